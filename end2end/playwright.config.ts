import { defineConfig } from "@playwright/test";

// scripts/test.sh builds the release server, starts it on free ports and exports these.
const baseURL = process.env.BASE_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    // scripts/test.sh puts the main server behind nginx with a self-signed certificate.
    ignoreHTTPSErrors: true,
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium: Playwright's own browser download is not reachable from here.
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
      ],
    },
  },
  projects: [
    { name: "chromium", testIgnore: /(dev-build|ionic)\.spec\.ts/ },
    // The Ionic client (clients/ionic), its production build on its own origin (IONIC_URL), calling
    // a Baton (IONIC_API_URL) whose CORS_ORIGINS names it.
    { name: "ionic", testMatch: /ionic\.spec\.ts/, use: { baseURL: process.env.IONIC_URL ?? "http://127.0.0.1:8100" } },
    // The dev build (debug WASM): scripts/test.sh serves one as DEV_URL; under `cargo leptos
    // end-to-end` everything is the dev build on port 3000.
    { name: "dev-build", testMatch: /dev-build\.spec\.ts/, use: { baseURL: process.env.DEV_URL ?? baseURL } },
  ],
});
