// Runs a WASI preview1 command like `wasmtime run --dir . FILE.wasm ARGS...`, via Node 20's node:wasi.
// Usage: node node_wasi_host.mjs <file.wasm> [args...]; exit status = guest's (134 + message on a trap).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
process.removeAllListeners('warning'); // drop the ExperimentalWarning so stderr is the guest's alone
const { WASI } = await import('node:wasi');
const [wasm, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [basename(wasm), ...args], env: {},
  preopens: { '.': process.cwd() }, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(wasm));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
try { process.exitCode = wasi.start(instance); }
catch (e) { process.stderr.write(`Error: ${e}\n`); process.exitCode = 134; } // a trap, as wasmtime reports it
