//! The `wharf` command: parses docker's command line, runs the command and turns errors
//! into docker's exit codes (125 for a bad command line, 1 for a failed command).

mod cli;

use clap::Parser;

fn main() {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = cli::run(args) {
        if let Some(cli::Exit(code)) = e.downcast_ref::<cli::Exit>() {
            std::process::exit(*code);
        }
        // `wharf ps | head`: the reader left; say nothing, as docker (killed by SIGPIPE)
        // says nothing.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(141);
        }
        // Library errors already include their cause in their message; print each cause
        // only when no outer message shows it yet.
        let mut msg = String::new();
        for cause in e.chain().map(ToString::to_string) {
            if msg.is_empty() {
                msg = cause;
            } else if !msg.contains(&cause) {
                msg = format!("{msg}: {cause}");
            }
        }
        eprintln!("Error: {msg}");
        std::process::exit(1);
    }
}
