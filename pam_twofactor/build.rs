// Keep the module mapped after pam_end's dlclose: sshd and login load and
// unload it once per transaction, and Rust's std registers thread-local
// destructors that must not outlive the code they point into.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
