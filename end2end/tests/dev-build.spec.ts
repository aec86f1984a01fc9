import { test, expect, gotoHydrated, signUp } from "./fixtures";

// The build a developer runs (`cargo leptos watch --split`, `cargo leptos end-to-end --split`):
// debug WASM, `erase_components` as cargo-leptos sets it, the inside island split off.
// scripts/test.sh serves one as DEV_URL and runs this project against it.

test("a dev build serves and hydrates /login, and the split inside page loads", async ({ page }) => {
  // A debug WASM is about 4 MB: on 2 cores a fresh browser takes 15 to 20 s to compile it on each of
  // the three pages (nothing is cached yet), so the default 60 s was within a few seconds of the
  // whole test. This test is about the dev build working, not its speed.
  test.setTimeout(180_000);
  const wasm: string[] = [];
  page.on("response", (r) => {
    if (r.url().includes("/pkg/") && r.url().endsWith(".wasm")) wasm.push(r.url());
  });
  await gotoHydrated(page, "/login");
  await expect(page.getByRole("button", { name: "Log in" })).toBeEnabled();
  const name = await signUp(page);
  await page.getByTestId("load-secret").click();
  await expect(page.getByTestId("secret")).toContainText(`Hello ${name}`);
  expect(wasm.some((u) => u.includes("split_")), `the inside island's chunk: ${wasm}`).toBe(true);
});
