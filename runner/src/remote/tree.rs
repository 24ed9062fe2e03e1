//! An action's input root: files, symlinks and directories by path, turned into
//! REAPI `Directory` messages (each child list sorted by name), whose digests form
//! the Merkle tree that names the root.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bazel_remote_apis::build::bazel::remote::execution::v2::{
    Digest, Directory, DirectoryNode, FileNode, SymlinkNode,
};
use prost::Message;

use super::digest;

/// Where a blob's bytes come from when it must be uploaded.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A file on this machine, read again (and checked) at upload.
    File(PathBuf),
    /// Bytes in memory: a `Directory`, the `Command`, the `Action`.
    Bytes(Arc<Vec<u8>>),
}

#[derive(Debug)]
enum Node {
    File { digest: Digest, executable: bool },
    Symlink(String),
    Dir(BTreeMap<String, Node>),
}

/// A tree being built; paths are lists of names from the root.
#[derive(Debug, Default)]
pub(crate) struct InputTree {
    root: BTreeMap<String, Node>,
}

/// The tree as REAPI sees it: the root's digest and every blob it names.
#[derive(Debug)]
pub(crate) struct MerkleTree {
    pub root: Digest,
    /// Every directory message, by digest.
    pub directories: Vec<(Digest, Arc<Vec<u8>>)>,
}

impl InputTree {
    /// Adds a file. Adding the same file twice is fine; a different file, or a
    /// directory or symlink, at the same path is a conflict (the message says which).
    pub(crate) fn add_file(
        &mut self,
        path: &[String],
        digest: Digest,
        executable: bool,
    ) -> Result<(), String> {
        let (name, dir) = self.parent_of(path)?;
        match dir.get(name) {
            None => {
                dir.insert(name.clone(), Node::File { digest, executable });
                Ok(())
            }
            Some(Node::File {
                digest: d,
                executable: x,
            }) if *d == digest && *x == executable => Ok(()),
            Some(_) => Err(format!("two different entries for {}", path.join("/"))),
        }
    }

    /// Adds a symlink (its target as is).
    pub(crate) fn add_symlink(&mut self, path: &[String], target: String) -> Result<(), String> {
        let (name, dir) = self.parent_of(path)?;
        match dir.get(name) {
            None => {
                dir.insert(name.clone(), Node::Symlink(target));
                Ok(())
            }
            Some(Node::Symlink(t)) if *t == target => Ok(()),
            Some(_) => Err(format!("two different entries for {}", path.join("/"))),
        }
    }

    /// Makes sure a directory exists (an action's working directory, say).
    pub(crate) fn add_dir(&mut self, path: &[String]) -> Result<(), String> {
        let mut dir = &mut self.root;
        for (i, name) in path.iter().enumerate() {
            check_name(name)?;
            let node = dir
                .entry(name.clone())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            dir = match node {
                Node::Dir(d) => d,
                _ => {
                    return Err(format!(
                        "{} is a file or symlink and a directory",
                        path[..=i].join("/")
                    ))
                }
            };
        }
        Ok(())
    }

    fn parent_of<'a>(
        &mut self,
        path: &'a [String],
    ) -> Result<(&'a String, &mut BTreeMap<String, Node>), String> {
        let Some((name, parents)) = path.split_last() else {
            return Err("an empty path".to_string());
        };
        check_name(name)?;
        self.add_dir(parents)?;
        let mut dir = &mut self.root;
        for p in parents {
            dir = match dir.get_mut(p) {
                Some(Node::Dir(d)) => d,
                _ => unreachable!("add_dir made every parent a directory"),
            };
        }
        Ok((name, dir))
    }

    /// The Merkle tree: each directory encoded, children before parents.
    pub(crate) fn build(&self) -> MerkleTree {
        let mut directories = Vec::new();
        let root = encode(&self.root, &mut directories);
        MerkleTree { root, directories }
    }
}

/// A name REAPI accepts for a node: not empty, not `.` or `..`, no `/` or NUL.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(format!("{name:?} cannot be a name in an input tree"));
    }
    Ok(())
}

fn encode(dir: &BTreeMap<String, Node>, out: &mut Vec<(Digest, Arc<Vec<u8>>)>) -> Digest {
    // BTreeMap iterates in byte order of the names: the order REAPI requires.
    let mut msg = Directory::default();
    for (name, node) in dir {
        match node {
            Node::File { digest, executable } => msg.files.push(FileNode {
                name: name.clone(),
                digest: Some(digest.clone()),
                is_executable: *executable,
                node_properties: None,
            }),
            Node::Symlink(target) => msg.symlinks.push(SymlinkNode {
                name: name.clone(),
                target: target.clone(),
                node_properties: None,
            }),
            Node::Dir(children) => msg.directories.push(DirectoryNode {
                name: name.clone(),
                digest: Some(encode(children, out)),
            }),
        }
    }
    let bytes = msg.encode_to_vec();
    let d = digest::of_bytes(&bytes);
    out.push((d.clone(), Arc::new(bytes)));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    /// A `Digest` message by hand: field 1 (hash, 64 bytes), field 2 (size, varint < 128).
    fn digest_bytes(d: &Digest) -> Vec<u8> {
        let mut b = vec![0x0a, 64];
        b.extend_from_slice(d.hash.as_bytes());
        if d.size_bytes != 0 {
            b.extend_from_slice(&[0x10, d.size_bytes as u8]);
        }
        b
    }

    fn len_field(tag: u8, body: &[u8]) -> Vec<u8> {
        assert!(body.len() < 128);
        let mut b = vec![tag, body.len() as u8];
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn empty_root_is_the_empty_blob() {
        let t = InputTree::default().build();
        assert_eq!(t.root, digest::of_bytes(b""));
        assert_eq!(
            t.root.hash,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// `/bin/cc` (executable), `/bin/c` -> `cc`, `/a.o`: encoded by hand from the
    /// protobuf wire format, sorted by name (files, then directories, then symlinks
    /// are separate fields: 1, 2, 3).
    #[test]
    fn digests_match_hand_encoded_directories() {
        let hello = digest::of_bytes(b"hello");
        let obj = digest::of_bytes(b"obj");
        let mut t = InputTree::default();
        t.add_file(&p("bin/cc"), hello.clone(), true).unwrap();
        t.add_symlink(&p("bin/c"), "cc".into()).unwrap();
        t.add_file(&p("a.o"), obj.clone(), false).unwrap();
        let built = t.build();

        // bin: files [cc], symlinks [c -> cc]
        let mut cc = len_field(0x0a, b"cc");
        cc.extend(len_field(0x12, &digest_bytes(&hello)));
        cc.extend([0x20, 0x01]); // is_executable = true
        let mut c = len_field(0x0a, b"c");
        c.extend(len_field(0x12, b"cc"));
        let mut bin = len_field(0x0a, &cc);
        bin.extend(len_field(0x1a, &c));
        let bin_digest = digest::of_bytes(&bin);

        // root: files [a.o], directories [bin]
        let mut a = len_field(0x0a, b"a.o");
        a.extend(len_field(0x12, &digest_bytes(&obj)));
        let mut bin_node = len_field(0x0a, b"bin");
        bin_node.extend(len_field(0x12, &digest_bytes(&bin_digest)));
        let mut root = len_field(0x0a, &a);
        root.extend(len_field(0x12, &bin_node));

        assert_eq!(built.root, digest::of_bytes(&root));
        assert_eq!(built.directories.len(), 2);
        assert_eq!(*built.directories[0].1, bin);
        assert_eq!(*built.directories[1].1, root);
    }

    #[test]
    fn names_sort_by_bytes_and_order_of_adding_does_not_matter() {
        let d = digest::of_bytes(b"x");
        let mut one = InputTree::default();
        let mut two = InputTree::default();
        for name in ["b", "B", "a", "é", "a.o"] {
            one.add_file(&p(&format!("w/{name}")), d.clone(), false)
                .unwrap();
        }
        for name in ["é", "a.o", "a", "B", "b"] {
            two.add_file(&p(&format!("w/{name}")), d.clone(), false)
                .unwrap();
        }
        assert_eq!(one.build().root, two.build().root);
        let w = Directory::decode(one.build().directories[0].1.as_slice()).unwrap();
        let names: Vec<_> = w.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["B", "a", "a.o", "b", "é"]);
    }

    #[test]
    fn conflicts_are_refused() {
        let d = digest::of_bytes(b"x");
        let mut t = InputTree::default();
        t.add_file(&p("w/a.o"), d.clone(), false).unwrap();
        t.add_file(&p("w/a.o"), d.clone(), false).unwrap();
        assert!(t
            .add_file(&p("w/a.o"), digest::of_bytes(b"y"), false)
            .is_err());
        assert!(t.add_file(&p("w/a.o/x"), d.clone(), false).is_err());
        assert!(t.add_symlink(&p("w"), "x".into()).is_err());
        assert!(t.add_file(&p("w/../x"), d.clone(), false).is_err());
        assert!(t.add_file(&p("w//x"), d, false).is_err());
    }
}
