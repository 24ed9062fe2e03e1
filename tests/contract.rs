//! wit/ is the artifact's contract, and these tests keep it true: its job-file
//! records describe the same JSON as the serde types in src/job_file.rs, and its
//! world lists exactly the WASI imports of the built dtlto-mock.wasm, with their
//! core-wasm signatures.

use dtlto_mock::job_file::JobFile;
use std::collections::BTreeMap;
use wit_parser::{Resolve, Type, TypeDefKind};

fn contract() -> Resolve {
    let mut resolve = Resolve::new();
    let wit = crate::util::repo_root().join("wit");
    resolve.push_dir(&wit).expect("wit/ parses");
    resolve
}

/// The interface `name` of the contract's package.
fn interface<'r>(resolve: &'r Resolve, name: &str) -> &'r wit_parser::Interface {
    resolve
        .interfaces
        .iter()
        .map(|(_, i)| i)
        .find(|i| i.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("wit/ has no interface {name}"))
}

/// A JSON text with the shape of `ty`: strings "x", lists of one element, records as
/// objects with snake_case keys in WIT order.
fn sample(resolve: &Resolve, ty: &Type) -> String {
    match ty {
        Type::String => "\"x\"".to_owned(),
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Record(record) => {
                let fields: Vec<String> = record
                    .fields
                    .iter()
                    .map(|f| {
                        format!(
                            "\"{}\":{}",
                            f.name.replace('-', "_"),
                            sample(resolve, &f.ty)
                        )
                    })
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
            TypeDefKind::List(element) => format!("[{}]", sample(resolve, element)),
            TypeDefKind::Type(alias) => sample(resolve, alias),
            other => panic!("the job file has no {other:?} values"),
        },
        other => panic!("the job file has no {other:?} values"),
    }
}

#[test]
fn the_wit_records_and_the_serde_types_describe_the_same_json() {
    let resolve = contract();
    let job_file = interface(&resolve, "job-file");
    let dist_file = job_file.types["dist-file"];
    let text = sample(&resolve, &Type::Id(dist_file));
    // The serde types deny unknown keys and require every field, so a field or a
    // shape on one side only fails here, and the round trip checks the key order.
    let typed: JobFile = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("wit/'s dist-file does not fit src/job_file.rs: {e}\n{text}"));
    assert_eq!(serde_json::to_string(&typed).unwrap(), text);
}

/// The core-wasm type a WIT parameter or result lowers to in preview 1.
fn core_type(resolve: &Resolve, ty: &Type) -> wasmparser::ValType {
    match ty {
        Type::U8 | Type::U16 | Type::U32 | Type::S8 | Type::S16 | Type::S32 => {
            wasmparser::ValType::I32
        }
        Type::U64 | Type::S64 => wasmparser::ValType::I64,
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Type(alias) => core_type(resolve, alias),
            other => panic!("preview-1 functions take only integers, not {other:?}"),
        },
        other => panic!("preview-1 functions take only integers, not {other:?}"),
    }
}

type Signature = (Vec<wasmparser::ValType>, Vec<wasmparser::ValType>);

/// The functions the world allows: import name -> core signature.
fn allowed_imports() -> BTreeMap<String, Signature> {
    let resolve = contract();
    let wasi = interface(&resolve, "wasi-snapshot-preview1");
    let world = resolve
        .worlds
        .iter()
        .map(|(_, w)| w)
        .find(|w| w.name == "command")
        .expect("wit/ has the world `command`");
    let imports_wasi = world.imports.values().any(|item| {
        matches!(item, wit_parser::WorldItem::Interface { id, .. } if resolve.interfaces[*id].name == wasi.name)
    });
    assert!(
        imports_wasi,
        "the world `command` must import wasi-snapshot-preview1"
    );
    wasi.functions
        .values()
        .map(|f| {
            let params = f
                .params
                .iter()
                .map(|p| core_type(&resolve, &p.ty))
                .collect();
            let results = f.result.iter().map(|r| core_type(&resolve, r)).collect();
            (f.name.replace('-', "_"), (params, results))
        })
        .collect()
}

/// The built artifact's imports: (module, name) -> core signature.
fn artifact_imports() -> BTreeMap<(String, String), Signature> {
    let mut types = Vec::new();
    let mut imports = BTreeMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(dtlto_runner::guest_module::WASM) {
        match payload.expect("the artifact is valid wasm") {
            wasmparser::Payload::TypeSection(reader) => {
                for func in reader.into_iter_err_on_gc_types() {
                    let func = func.expect("function type");
                    types.push((func.params().to_vec(), func.results().to_vec()));
                }
            }
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.expect("import");
                    let wasmparser::TypeRef::Func(index) = import.ty else {
                        panic!(
                            "the artifact imports a non-function: {}.{}",
                            import.module, import.name
                        );
                    };
                    let signature = types[index as usize].clone();
                    imports.insert(
                        (import.module.to_owned(), import.name.to_owned()),
                        signature,
                    );
                }
            }
            _ => {}
        }
    }
    imports
}

#[test]
fn the_artifact_imports_exactly_what_the_world_allows() {
    let allowed = allowed_imports();
    let imported = artifact_imports();
    let mut problems = Vec::new();
    for ((module, name), signature) in &imported {
        match allowed.get(name) {
            _ if module != "wasi_snapshot_preview1" => problems.push(format!(
                "imports {module}.{name}: only wasi_snapshot_preview1 is allowed"
            )),
            None => problems.push(format!(
                "imports {module}.{name}, which the world `command` in wit/ does not allow"
            )),
            Some(declared) if declared != signature => problems.push(format!(
                "imports {module}.{name} as {signature:?}, but wit/ declares {declared:?}"
            )),
            Some(_) => {}
        }
    }
    for name in allowed.keys() {
        if !imported.contains_key(&("wasi_snapshot_preview1".to_owned(), name.clone())) {
            problems.push(format!(
                "wit/ allows {name}, which the artifact does not import: remove it so the contract stays exact"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
