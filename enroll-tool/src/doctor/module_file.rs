//! The module's file, as libpam would find it: it exists, is root's, and
//! is an ELF shared object for this machine that exports
//! `pam_sm_authenticate` and whose libraries are installed.
//!
//! The file is examined, never loaded: `twofactor doctor` must not run a
//! module's code inside itself (its initialisers, its copy of the Rust
//! runtime) just to look at it, and a cut file would kill it (dlopen maps
//! it, and reading past the end is SIGBUS). The file's bytes are read and
//! their tables parsed with `object`'s ELF reader, which checks every
//! offset against the end: the 64- or 32-bit class and byte order, the
//! shared object type, the machine, the exported `pam_sm_*` functions, and
//! the libraries it needs.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{Dyn, FileHeader, SectionHeader, SectionTable, Sym};
use object::read::{ReadRef, StringTable};
use object::Endianness;

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
/// Said of a file whose tables end past its end: a copy cut short.
const TRUNCATED: &str = "truncated (a table points past the end of the file)";

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
        "x86_64" => Some(elf::EM_X86_64),
        "x86" => Some(elf::EM_386),
        "aarch64" => Some(elf::EM_AARCH64),
        "arm" => Some(elf::EM_ARM),
        "riscv64" => Some(elf::EM_RISCV),
        "powerpc64" => Some(elf::EM_PPC64),
        "s390x" => Some(elf::EM_S390),
        "loongarch64" => Some(elf::EM_LOONGARCH),
        _ => None,
    }
}

/// A readable name for an e_machine value.
fn machine_name(machine: u16) -> String {
    match machine {
        elf::EM_X86_64 => "x86-64".into(),
        elf::EM_386 => "i386".into(),
        elf::EM_AARCH64 => "AArch64".into(),
        elf::EM_ARM => "ARM".into(),
        elf::EM_RISCV => "RISC-V".into(),
        elf::EM_PPC64 => "PowerPC64".into(),
        elf::EM_S390 => "s390x".into(),
        elf::EM_LOONGARCH => "LoongArch".into(),
        other => format!("machine {other}"),
    }
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
    // e_ident first, on its own (16 bytes: the magic, then the class at 4
    // and the byte order at 5): each way of not being an ELF image this
    // reader knows has its own words.
    if bytes.len() < 16 || bytes[..4] != elf::ELFMAG {
        return Err("is not an ELF file".into());
    }
    let wide = match bytes[4] {
        elf::ELFCLASS32 => false,
        elf::ELFCLASS64 => true,
        _ => return Err("has an unknown ELF class".into()),
    };
    let endian = match bytes[5] {
        elf::ELFDATA2LSB => Endianness::Little,
        elf::ELFDATA2MSB => Endianness::Big,
        _ => return Err("has an unknown ELF byte order".into()),
    };
    if wide {
        read::<elf::FileHeader64<Endianness>>(bytes, endian)
    } else {
        read::<elf::FileHeader32<Endianness>>(bytes, endian)
    }
}

fn read<Elf: FileHeader<Endian = Endianness>>(
    bytes: &[u8],
    endian: Endianness,
) -> Result<SharedObject, String> {
    // Not `FileHeader::parse`, which also refuses an EI_VERSION other than
    // 1: that byte is not what this check is about.
    let header: &Elf = bytes.read_at(0).map_err(|()| TRUNCATED.to_string())?;
    let kind = header.e_type(endian);
    if kind != elf::ET_DYN {
        return Err(format!("is not a shared object (ELF type {kind})"));
    }
    let (pam_functions, needed) =
        exports(header, endian, bytes).map_err(|err| unreadable(header, endian, bytes, err))?;
    Ok(SharedObject {
        machine: header.e_machine(endian),
        pam_functions,
        needed,
    })
}

/// The defined `pam_sm_*` functions of the dynamic symbol table (sorted),
/// and the DT_NEEDED libraries (in order).
fn exports<Elf: FileHeader>(
    header: &Elf,
    endian: Elf::Endian,
    bytes: &[u8],
) -> object::read::Result<(Vec<String>, Vec<String>)> {
    // The section headers without the table of their names: no section is
    // looked up by name, so a damaged name table changes nothing here.
    let sections: SectionTable<Elf> = SectionTable::new(
        header.section_headers(endian, bytes)?,
        StringTable::default(),
    );

    let symbols = sections.symbols(endian, bytes, elf::SHT_DYNSYM)?;
    let mut pam_functions = Vec::new();
    for symbol in symbols.iter() {
        if symbol.st_shndx(endian) == elf::SHN_UNDEF || symbol.st_type() != elf::STT_FUNC {
            continue;
        }
        let name = String::from_utf8_lossy(symbols.symbol_name(endian, symbol)?).into_owned();
        if name.starts_with("pam_sm_") && !pam_functions.contains(&name) {
            pam_functions.push(name);
        }
    }
    pam_functions.sort();

    let mut needed = Vec::new();
    if let Some((entries, strings)) = sections.dynamic(endian, bytes)? {
        let strings = sections.strings(endian, bytes, strings)?;
        for entry in entries {
            match entry.tag(endian) {
                elf::DT_NULL => break,
                elf::DT_NEEDED => {
                    let name = entry.string(endian, strings)?;
                    needed.push(String::from_utf8_lossy(name).into_owned());
                }
                _ => {}
            }
        }
    }
    Ok((pam_functions, needed))
}

/// The phrase for tables that could not be read: truncated when the
/// section headers, or a section they describe, end past the end of the
/// file (a copy cut short); else damaged, in object's words.
fn unreadable<Elf: FileHeader>(
    header: &Elf,
    endian: Elf::Endian,
    bytes: &[u8],
    err: object::read::Error,
) -> String {
    let len = bytes.len() as u64;
    let past_end =
        |offset: u64, size: u64| !matches!(offset.checked_add(size), Some(end) if end <= len);
    let headers = u64::from(header.e_shnum(endian)) * u64::from(header.e_shentsize(endian));
    let truncated = past_end(header.e_shoff(endian).into(), headers)
        || header.section_headers(endian, bytes).is_ok_and(|sections| {
            sections
                .iter()
                .filter_map(|section| section.file_range(endian))
                .any(|(offset, size)| past_end(offset, size))
        });
    if truncated {
        TRUNCATED.to_string()
    } else {
        format!("is damaged ({err})")
    }
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

    #[test]
    fn each_way_of_not_being_a_module_has_its_words() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let changed = |at: usize, value: u8| {
            let mut bytes = exe.clone();
            bytes[at] = value;
            parse(&bytes).unwrap_err()
        };
        assert_eq!(changed(4, 3), "has an unknown ELF class");
        assert_eq!(changed(5, 0), "has an unknown ELF byte order");
        assert_eq!(changed(16, 1), "is not a shared object (ELF type 1)");
        assert_eq!(parse(&exe[..exe.len() / 2]).unwrap_err(), TRUNCATED);
    }

    #[test]
    #[cfg(all(target_pointer_width = "64", target_endian = "little"))]
    fn a_damaged_table_is_not_called_truncated() {
        let mut exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let header: &elf::FileHeader64<Endianness> = exe.read_at(0).unwrap();
        let endian = Endianness::Little;
        let sections = header.section_headers(endian, &exe[..]).unwrap();
        let dynsym = sections
            .iter()
            .position(|s| s.sh_type(endian) == elf::SHT_DYNSYM)
            .unwrap();
        // Its sh_link (at 40 in a 64-bit section header) names itself, not a
        // string table: every table is whole, one is wrong.
        let link = header.e_shoff(endian) as usize + dynsym * 64 + 40;
        exe[link..link + 4].copy_from_slice(&(dynsym as u32).to_le_bytes());
        let damaged = parse(&exe).unwrap_err();
        assert!(damaged.starts_with("is damaged ("), "{damaged}");
    }
}
