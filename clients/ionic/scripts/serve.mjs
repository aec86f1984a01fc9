// Serves the production build (www/) on its own origin, as a static host would: files by path,
// every other path the app's index.html (its router's deep links), `config.json` naming the Baton
// to call. Usage: node scripts/serve.mjs [--port 8100] [--host 127.0.0.1] [--api http://127.0.0.1:3000]
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string", default: "8100" }, host: { type: "string", default: "127.0.0.1" }, api: { type: "string" } },
});
const root = fileURLToPath(new URL("../www/", import.meta.url));
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
};
const config = values.api ? JSON.stringify({ apiUrl: values.api }) : await readFile(join(root, "config.json"), "utf8");
const api = new URL(JSON.parse(config).apiUrl).origin;
// The tokens live in this origin's storage: nothing but the app's own scripts may run here.
const csp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  `connect-src 'self' ${api}`,
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

createServer(async (req, res) => {
  const headers = { "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer" };
  let path;
  try {
    // The URL parser resolves `..`; normalize() then keeps the path under the root.
    path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
  } catch {
    res.writeHead(400, { ...headers, "Content-Type": types[".txt"] });
    return res.end("bad request");
  }
  if (path === "/config.json") {
    res.writeHead(200, { ...headers, "Content-Type": types[".json"], "Cache-Control": "no-cache" });
    return res.end(config);
  }
  const file = path.endsWith("/") || !extname(path) ? "index.html" : path.slice(1);
  try {
    const body = await readFile(join(root, file));
    // Hashed names (main-XXXXXXXX.js) never change; everything else, index.html first, is asked again.
    const cache = /-[A-Z0-9]{8}\.(js|css)$/.test(file) ? "public, max-age=31536000, immutable" : "no-cache";
    res.writeHead(200, { ...headers, "Content-Type": types[extname(file)] ?? "application/octet-stream", "Cache-Control": cache });
    res.end(body);
  } catch {
    res.writeHead(404, { ...headers, "Content-Type": types[".txt"] });
    res.end("not found");
  }
}).listen(Number(values.port), values.host, () => {
  console.log(`Baton's Ionic app on http://${values.host}:${values.port}, calling ${api}`);
});
