//! The `drover` binary: a Nomad-shaped command line over the HTTP API, plus `drover agent`.

#[global_allocator]
static GLOBAL: tools::allocator::Mimalloc = tools::allocator::Mimalloc;

fn main() {
    tools::allocator::tune();
    std::process::exit(tools::cli::main());
}
