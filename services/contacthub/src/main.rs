//! The `contacthub` command: see `contacthub --help`.

/// sled allocates and frees per key it writes; mimalloc makes the projector about 1.5x faster
/// than the system allocator (measured in docs/operations.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    contacthub::main()
}
