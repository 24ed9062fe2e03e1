# Runs a WASI preview1 command like `wasmtime run --dir . FILE.wasm ARGS...`, via PyPI `wasmtime` (50.0.1).
# Usage: python python_wasmtime_host.py <file.wasm> [args...]; exit status = guest's (134 + message on a trap).
import os, sys
from wasmtime import Engine, ExitTrap, Linker, Module, Store, Trap, WasiConfig, WasmtimeError

wasm, args = sys.argv[1], sys.argv[2:]
engine = Engine()
wasi = WasiConfig()
wasi.argv = [os.path.basename(wasm)] + args
wasi.preopen_dir(os.getcwd(), '.')
wasi.inherit_stdout()
wasi.inherit_stderr()
store = Store(engine)
store.set_wasi(wasi)
linker = Linker(engine)
linker.define_wasi()
try:
    linker.instantiate(store, Module.from_file(engine, wasm)).exports(store)['_start'](store)
except ExitTrap as e:
    sys.exit(e.code)
except (Trap, WasmtimeError) as e:
    print(f'Error: {e}', file=sys.stderr)
    sys.exit(134)
