//! `whereabouts`: the CNI IPAM plugin binary. Everything is in the library; see `plugin::run`.

fn main() {
    let code = plugin::run(plugin::Env::process(), &plugin::TcpFactory);
    std::process::exit(code);
}
