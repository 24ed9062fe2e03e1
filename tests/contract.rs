//! wit/ is the artifact's contract, and these tests keep it true: its job-file
//! records state the schema the guest's parser applies (src/job_file.rs: keys in
//! order, shapes, minimum counts), its world lists exactly the WASI imports of the
//! built dtlto-mock.wasm with their core-wasm signatures, and it names the
//! environment a sandboxing host sets.

use dtlto_mock::job_file::{Field, Shape, COMMON, DOCUMENT, JOB};
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

/// How wit/ says a list's least length in a field's documentation.
fn stated_minimum(docs: &str) -> Option<usize> {
    if docs.contains("may be empty") {
        return Some(0);
    }
    [
        ("At least one", 1),
        ("At least two", 2),
        ("At least three", 3),
    ]
    .iter()
    .find(|(words, _)| docs.contains(words))
    .map(|(_, n)| *n)
}

/// The element type, if `ty` is a list.
fn list_of(resolve: &Resolve, ty: &Type) -> Option<Type> {
    match ty {
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::List(element) => Some(*element),
            _ => None,
        },
        _ => None,
    }
}

/// Where the record `ty` and the parser's `fields` disagree, one line each.
fn disagreements(resolve: &Resolve, ty: &Type, fields: &[Field], at: &str) -> Vec<String> {
    let record = match ty {
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Record(record) => record,
            TypeDefKind::Type(alias) => return disagreements(resolve, alias, fields, at),
            other => return vec![format!("{at}: wit/ has {other:?}, the parser an object")],
        },
        other => return vec![format!("{at}: wit/ has {other:?}, the parser an object")],
    };
    let wit_keys: Vec<String> = record
        .fields
        .iter()
        .map(|f| f.name.replace('-', "_"))
        .collect();
    let parser_keys: Vec<&str> = fields.iter().map(|f| f.key).collect();
    if wit_keys != parser_keys {
        return vec![format!(
            "{at}: wit/ has the keys {wit_keys:?}, the parser {parser_keys:?}"
        )];
    }
    let mut found = Vec::new();
    for (wit, field) in record.fields.iter().zip(fields) {
        let at = format!("{at}.{}", field.key);
        let docs = wit.docs.contents.clone().unwrap_or_default();
        match field.shape {
            Shape::String if wit.ty == Type::String => {}
            Shape::Strings { at_least } if list_of(resolve, &wit.ty) == Some(Type::String) => {
                let stated = stated_minimum(&docs);
                if stated != Some(at_least) {
                    found.push(format!(
                        "{at}: the parser wants at least {at_least}, wit/ says {stated:?} (docs: {docs:?})"
                    ));
                }
            }
            Shape::Object(inner) => found.extend(disagreements(resolve, &wit.ty, inner, &at)),
            Shape::Objects(inner) => match list_of(resolve, &wit.ty) {
                Some(element) => {
                    found.extend(disagreements(resolve, &element, inner, &format!("{at}[]")))
                }
                None => found.push(format!("{at}: the parser wants a list of objects")),
            },
            shape => found.push(format!(
                "{at}: the parser wants {shape:?}, wit/ has {:?}",
                wit.ty
            )),
        }
    }
    found
}

fn dist_file(resolve: &Resolve) -> Type {
    Type::Id(interface(resolve, "job-file").types["dist-file"])
}

#[test]
fn the_wit_records_state_the_schema_the_parser_applies() {
    let resolve = contract();
    let found = disagreements(&resolve, &dist_file(&resolve), DOCUMENT, "(top level)");
    assert!(
        found.is_empty(),
        "wit/ and src/job_file.rs disagree:\n{}",
        found.join("\n")
    );
    // The parser's own tables hang together.
    assert_eq!(DOCUMENT[0].shape, Shape::Object(COMMON));
    assert_eq!(DOCUMENT[1].shape, Shape::Objects(JOB));
}

#[test]
fn a_changed_minimum_or_key_in_the_parser_is_caught() {
    // A parser that wanted three inputs, or a renamed key, fails the check above.
    let resolve = contract();
    let mut job = JOB.to_vec();
    job[1].shape = Shape::Strings { at_least: 3 };
    let job: &'static [Field] = Box::leak(job.into_boxed_slice());
    let mut document = DOCUMENT.to_vec();
    document[1].shape = Shape::Objects(job);
    let found = disagreements(&resolve, &dist_file(&resolve), &document, "(top level)");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("(top level).jobs[].inputs: the parser wants at least 3"),
        "{found:?}"
    );
    let mut renamed = DOCUMENT.to_vec();
    renamed[0].key = "shared";
    let found = disagreements(&resolve, &dist_file(&resolve), &renamed, "(top level)");
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn the_world_names_the_environment_a_sandboxing_host_sets() {
    let wit = std::fs::read_to_string(crate::util::repo_root().join("wit/dtlto-mock.wit")).unwrap();
    for variable in [
        dtlto_mock::host_protocol::PATH_MAP_VARIABLE,
        dtlto_mock::host_protocol::HOST_COMMITS_VARIABLE,
    ] {
        assert!(
            wit.contains(&format!("`{variable}")),
            "wit/ does not name {variable}"
        );
    }
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
