//! Integration harness (libtest-mimic): builds images and checks them against reference tools.

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let trials: Vec<libtest_mimic::Trial> = Vec::new();
    libtest_mimic::run(&args, trials).exit();
}
