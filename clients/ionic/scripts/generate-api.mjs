// Generates src/app/api/schema.gen.ts from Baton's OpenAPI document: the app's request and answer
// types come from the server's contract, so a change the app does not follow breaks its build.
// BATON_OPENAPI names the document (a file, or a live server's /api/openapi.json); by default the
// copy beside this package, which the test command checks against the live document.
// `--update` first saves the live document (BATON_OPENAPI, default a local Baton) as that copy.
import { readFile, writeFile } from "node:fs/promises";
import openapiTS, { astToString } from "openapi-typescript";

const COPY = "openapi.json";
let source = process.env.BATON_OPENAPI ?? COPY;
if (process.argv.includes("--update")) {
  const url = process.env.BATON_OPENAPI ?? "http://127.0.0.1:3000/api/openapi.json";
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  await writeFile(COPY, JSON.stringify(await res.json(), null, 4) + "\n");
  console.log(`${COPY} saved from ${url}`);
  source = COPY;
}
const live = /^https?:\/\//.test(source);
const document = live ? await (await fetch(source)).json() : JSON.parse(await readFile(source, "utf8"));
const banner = `// Generated from ${live ? source : COPY} by scripts/generate-api.mjs: do not edit.\n`;
await writeFile("src/app/api/schema.gen.ts", banner + astToString(await openapiTS(document)));
console.log(`src/app/api/schema.gen.ts generated from ${source}`);
