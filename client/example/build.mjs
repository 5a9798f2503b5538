// Builds the example site into example/dist/, as a site's own build would use the package:
// esbuild bundles src/main.js (which imports "efimero") and the head snippet is put into
// index.html at build time, minified. Run `npm run build` first: "efimero" resolves to ../dist.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build, transform } from "esbuild";
import { headSnippet } from "efimero";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

mkdirSync(here("dist"), { recursive: true });
await build({
  entryPoints: [here("src/main.js")], bundle: true, minify: true, format: "esm", target: "es2022",
  outfile: here("dist/main.js"), logLevel: "warning",
});
copyFileSync(here("src/site.css"), here("dist/site.css"));
const snippet = (await transform(headSnippet(), { minify: true, target: "es2021" })).code.trim();
const page = readFileSync(here("src/index.html"), "utf8").replace("/* efimero:head-snippet */", snippet);
writeFileSync(here("dist/index.html"), page);
console.log(`example: dist/index.html, dist/main.js (${readFileSync(here("dist/main.js")).length} B), dist/site.css`);
