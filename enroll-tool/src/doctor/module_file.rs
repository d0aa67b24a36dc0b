//! The module's file, as libpam would find it: it exists, is root's, and
//! is an ELF shared object for this machine that exports
//! `pam_sm_authenticate` and whose libraries are installed.
//!
//! The file is examined, never loaded: `twofactor doctor` must not run a
//! module's code inside itself (its initialisers, its copy of the Rust
//! runtime) just to look at it, and a cut file would kill it (dlopen maps
//! it, and reading past the end is SIGBUS). Read: the 64- or 32-bit class
//! and byte order, the shared object type, the machine, the exported
//! `pam_sm_*` functions, and the libraries it needs.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::findings::Findings;
use super::pam_d::PamLine;

/// Check the file of `line`'s module, unless an earlier line named the same
/// file (`checked`).
pub(super) fn check_line_module(
    findings: &mut Findings,
    line: &PamLine,
    module_dir: Option<&Path>,
    services: &[String],
    checked: &mut Vec<PathBuf>,
) {
    if let Some(path) = module_path(line, module_dir) {
        if !checked.contains(&path) {
            check_module(findings, &path, line, services);
            checked.push(path);
        }
    } else {
        findings.problem(
            "module",
            format!(
                "{}: the module is named without a path and no PAM module directory was \
                 found; libpam cannot load it",
                line.place()
            ),
            "name the module by its absolute path, or install it in /usr/lib/<multiarch>/security",
        );
    }
}

/// libpam's directory for modules named without a path.
pub(super) fn default_module_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(triplet) = multiarch() {
        candidates.push(PathBuf::from(format!("/lib/{triplet}/security")));
        candidates.push(PathBuf::from(format!("/usr/lib/{triplet}/security")));
    }
    for dir in ["/lib64/security", "/usr/lib64/security", "/lib/security"] {
        candidates.push(PathBuf::from(dir));
    }
    candidates.into_iter().find(|dir| dir.is_dir())
}

/// The file libpam loads for `line`: its path, or its name in `module_dir`.
fn module_path(line: &PamLine, module_dir: Option<&Path>) -> Option<PathBuf> {
    if line.module.starts_with('/') {
        Some(PathBuf::from(&line.module))
    } else {
        module_dir.map(|dir| dir.join(&line.module))
    }
}

/// Owner and mode (whoever can change the file runs code in every login),
/// then what its ELF image says.
fn check_module(findings: &mut Findings, path: &Path, line: &PamLine, services: &[String]) {
    let affected = if services.is_empty() {
        format!("the stack of {}", line.place())
    } else {
        format!("every {} login", services.join(", "))
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            findings.problem(
                "module",
                format!(
                    "{} {}: libpam cannot load it, and {affected} fails",
                    path.display(),
                    twofactor_core::files::describe_io_error(&err).to_lowercase()
                ),
                "install the package (libpam-twofactor), or correct the path in the stack",
            );
            return;
        }
    };
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        findings.problem(
            "module",
            format!(
                "{} is owned by uid {} with mode {:04o}: whoever can change it runs code in \
                 every login",
                path.display(),
                meta.uid(),
                meta.permissions().mode() & 0o7777
            ),
            format!("chown root:root {0} && chmod 0644 {0}", path.display()),
        );
    }
    match examine(path) {
        Err(why) => findings.problem(
            "module",
            format!(
                "{} {why}: libpam cannot load it, and {affected} fails",
                path.display()
            ),
            "reinstall the package (libpam-twofactor)",
        ),
        Ok(object) => {
            let host = host_machine();
            let missing_libraries: Vec<&String> = object
                .needed
                .iter()
                .filter(|lib| find_library(lib).is_none())
                .collect();
            if host.is_some_and(|m| m != object.machine) {
                findings.problem(
                    "module",
                    format!(
                        "{} is built for {}, this machine is {}: libpam cannot load it, and \
                         {affected} fails",
                        path.display(),
                        machine_name(object.machine),
                        host.map(machine_name).unwrap_or_default()
                    ),
                    "install the package built for this architecture",
                );
            } else if !object
                .pam_functions
                .iter()
                .any(|f| f == "pam_sm_authenticate")
            {
                findings.problem(
                    "module",
                    format!(
                        "{} is a shared object without pam_sm_authenticate: not a PAM auth \
                         module, and {affected} fails",
                        path.display()
                    ),
                    "reinstall the package (libpam-twofactor)",
                );
            } else if !missing_libraries.is_empty() {
                let names: Vec<&str> = missing_libraries.iter().map(|s| s.as_str()).collect();
                findings.problem(
                    "module",
                    format!(
                        "{} needs {}, which is not installed: libpam cannot load it, and \
                         {affected} fails",
                        path.display(),
                        names.join(", ")
                    ),
                    "install the missing libraries (apt-get install libpam0g)",
                );
            } else {
                findings.ok(
                    "module",
                    format!(
                        "{} is a {} PAM module ({})",
                        path.display(),
                        machine_name(object.machine),
                        object.pam_functions.join(", ")
                    ),
                );
            }
        }
    }
}

/// Largest file examined.
const MAX_BYTES: u64 = 256 * 1024 * 1024;
const ET_DYN: u16 = 3;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const DT_NEEDED: u64 = 1;
const SHN_UNDEF: u16 = 0;
const STT_FUNC: u8 = 2;

/// What was learnt about a shared object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SharedObject {
    /// e_machine.
    machine: u16,
    /// Defined function symbols in the dynamic symbol table that start with
    /// `pam_sm_`.
    pam_functions: Vec<String>,
    /// DT_NEEDED entries.
    needed: Vec<String>,
}

/// The e_machine value of the architecture this program was built for.
fn host_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "x86" => Some(3),
        "aarch64" => Some(183),
        "arm" => Some(40),
        "riscv64" => Some(243),
        "powerpc64" => Some(21),
        "s390x" => Some(22),
        "loongarch64" => Some(258),
        _ => None,
    }
}

/// A readable name for an e_machine value.
fn machine_name(machine: u16) -> String {
    match machine {
        62 => "x86-64".into(),
        3 => "i386".into(),
        183 => "AArch64".into(),
        40 => "ARM".into(),
        243 => "RISC-V".into(),
        21 => "PowerPC64".into(),
        22 => "s390x".into(),
        258 => "LoongArch".into(),
        other => format!("machine {other}"),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
    wide: bool,
}

impl Reader<'_> {
    fn slice(&self, offset: u64, len: u64) -> Result<&[u8], String> {
        let start = usize::try_from(offset).map_err(|_| "offset out of range")?;
        let len = usize::try_from(len).map_err(|_| "length out of range")?;
        let end = start.checked_add(len).ok_or("offset out of range")?;
        self.bytes
            .get(start..end)
            .ok_or_else(|| "truncated (a table points past the end of the file)".to_string())
    }

    fn uint(&self, offset: u64, size: u64) -> Result<u64, String> {
        let raw = self.slice(offset, size)?;
        let mut value = 0u64;
        for i in 0..raw.len() {
            let byte = if self.little {
                raw[raw.len() - 1 - i]
            } else {
                raw[i]
            };
            value = (value << 8) | u64::from(byte);
        }
        Ok(value)
    }

    fn u16(&self, offset: u64) -> Result<u16, String> {
        Ok(self.uint(offset, 2)? as u16)
    }

    fn u32(&self, offset: u64) -> Result<u32, String> {
        Ok(self.uint(offset, 4)? as u32)
    }

    /// A word: 8 bytes in 64-bit files, 4 in 32-bit ones.
    fn word(&self, offset: u64) -> Result<u64, String> {
        self.uint(offset, if self.wide { 8 } else { 4 })
    }

    fn c_string(&self, offset: u64) -> Result<String, String> {
        let start = usize::try_from(offset).map_err(|_| "offset out of range")?;
        let rest = self.bytes.get(start..).ok_or("string past the end")?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

struct Section {
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

/// Read and examine `path`. The error is a phrase ("is not an ELF file").
fn examine(path: &Path) -> Result<SharedObject, String> {
    let file = File::open(path).map_err(|e| twofactor_core::files::describe_io_error(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| twofactor_core::files::describe_io_error(&e))?;
    parse(&bytes)
}

/// Examine an ELF image in memory.
fn parse(bytes: &[u8]) -> Result<SharedObject, String> {
    if bytes.len() < 16 || &bytes[..4] != b"\x7fELF" {
        return Err("is not an ELF file".into());
    }
    let wide = match bytes[4] {
        1 => false,
        2 => true,
        _ => return Err("has an unknown ELF class".into()),
    };
    let little = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err("has an unknown ELF byte order".into()),
    };
    let r = Reader {
        bytes,
        little,
        wide,
    };
    let kind = r.u16(16)?;
    let machine = r.u16(18)?;
    if kind != ET_DYN {
        return Err(format!("is not a shared object (ELF type {kind})"));
    }
    let (shoff, shentsize, shnum) = if wide {
        (r.word(40)?, u64::from(r.u16(58)?), u64::from(r.u16(60)?))
    } else {
        (r.word(32)?, u64::from(r.u16(46)?), u64::from(r.u16(48)?))
    };
    let mut sections = Vec::new();
    for i in 0..shnum {
        let base = shoff
            .checked_add(i.checked_mul(shentsize).ok_or("section table overflow")?)
            .ok_or("section table overflow")?;
        let section = if wide {
            Section {
                kind: r.u32(base + 4)?,
                offset: r.word(base + 24)?,
                size: r.word(base + 32)?,
                link: r.u32(base + 40)?,
                entsize: r.word(base + 56)?,
            }
        } else {
            Section {
                kind: r.u32(base + 4)?,
                offset: r.word(base + 16)?,
                size: r.word(base + 20)?,
                link: r.u32(base + 24)?,
                entsize: r.word(base + 36)?,
            }
        };
        sections.push(section);
    }
    let strings_of = |section: &Section| -> Result<u64, String> {
        sections
            .get(section.link as usize)
            .map(|s| s.offset)
            .ok_or_else(|| "has a symbol table without strings".to_string())
    };

    let mut pam_functions = Vec::new();
    let mut needed = Vec::new();
    for section in &sections {
        match section.kind {
            SHT_DYNSYM => {
                let strings = strings_of(section)?;
                let entsize = if section.entsize == 0 {
                    if wide {
                        24
                    } else {
                        16
                    }
                } else {
                    section.entsize
                };
                for i in 0..section.size / entsize {
                    let base = section.offset + i * entsize;
                    let name = u64::from(r.u32(base)?);
                    let (info, shndx) = if wide {
                        (r.slice(base + 4, 1)?[0], r.u16(base + 6)?)
                    } else {
                        (r.slice(base + 12, 1)?[0], r.u16(base + 14)?)
                    };
                    if shndx == SHN_UNDEF || info & 0xf != STT_FUNC {
                        continue;
                    }
                    let name = r.c_string(strings + name)?;
                    if name.starts_with("pam_sm_") && !pam_functions.contains(&name) {
                        pam_functions.push(name);
                    }
                }
            }
            SHT_DYNAMIC => {
                let strings = strings_of(section)?;
                let entsize = if wide { 16 } else { 8 };
                for i in 0..section.size / entsize {
                    let base = section.offset + i * entsize;
                    let tag = r.word(base)?;
                    if tag == 0 {
                        break;
                    }
                    if tag == DT_NEEDED {
                        let value = r.word(base + entsize / 2)?;
                        needed.push(r.c_string(strings + value)?);
                    }
                }
            }
            _ => {}
        }
    }
    pam_functions.sort();
    Ok(SharedObject {
        machine,
        pam_functions,
        needed,
    })
}

/// Where the dynamic loader finds a library named in DT_NEEDED, if in one
/// of the standard directories (the multiarch ones first).
fn find_library(name: &str) -> Option<std::path::PathBuf> {
    let multiarch = multiarch();
    let mut dirs: Vec<String> = Vec::new();
    if let Some(triplet) = &multiarch {
        dirs.push(format!("/lib/{triplet}"));
        dirs.push(format!("/usr/lib/{triplet}"));
    }
    for dir in ["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"] {
        dirs.push(dir.to_string());
    }
    dirs.into_iter()
        .map(|dir| Path::new(&dir).join(name))
        .find(|path| path.exists())
}

/// The Debian multiarch triplet of this build (`x86_64-linux-gnu`).
fn multiarch() -> Option<String> {
    let arch = match std::env::consts::ARCH {
        "x86" => "i386",
        "powerpc64" if cfg!(target_endian = "little") => "powerpc64le",
        other => other,
    };
    let abi = if cfg!(target_env = "musl") {
        "linux-musl"
    } else if cfg!(target_arch = "arm") {
        "linux-gnueabihf"
    } else {
        "linux-gnu"
    };
    cfg!(target_os = "linux").then(|| format!("{arch}-{abi}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_elf_but_not_a_pam_module() {
        let exe = std::env::current_exe().unwrap();
        let object = examine(&exe).unwrap();
        assert_eq!(Some(object.machine), host_machine());
        assert!(object.pam_functions.is_empty(), "{object:?}");
        assert!(object.needed.iter().any(|n| n.starts_with("libc.so")));
    }

    #[test]
    fn a_system_pam_module_exports_its_functions() {
        // pam_unix ships with every Debian system (libpam-modules).
        let Some(triplet) = multiarch() else { return };
        let path = Path::new("/lib").join(triplet).join("security/pam_unix.so");
        let object = examine(&path).unwrap();
        assert!(
            object
                .pam_functions
                .contains(&"pam_sm_authenticate".to_string()),
            "{object:?}"
        );
        assert!(object.needed.iter().any(|n| n == "libpam.so.0"));
        assert!(find_library("libpam.so.0").is_some());
    }

    #[test]
    fn malformed_images_are_refused() {
        assert_eq!(parse(b"#!/bin/sh\n").unwrap_err(), "is not an ELF file");
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut header = exe[..64].to_vec();
        // Section table past the end of the (cut) image.
        assert!(parse(&header).unwrap_err().contains("truncated"));
        header[16] = 2; // ET_EXEC
        assert!(parse(&header).unwrap_err().contains("not a shared object"));
    }
}
