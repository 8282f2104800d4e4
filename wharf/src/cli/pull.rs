//! `pull`, `push`, `login` and `logout`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context as _};
use wharf::credentials;
use wharf::image::reference::{ImageRef, DEFAULT_DOMAIN};
use wharf::image::registry;
use wharf::operations::image;

use super::progress::Display;

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// Use plain HTTP for this registry (always used for loopback registries)
    #[arg(long)]
    insecure: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    image: String,
}

/// Whether the user wrote a tag or digest, which decides docker's "Using default tag".
fn has_tag_or_digest(input: &str) -> bool {
    input.contains('@')
        || input
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

pub fn pull(root: &Path, a: PullArgs) -> anyhow::Result<()> {
    let r = ImageRef::parse(&a.image)?;
    if !a.quiet {
        if !has_tag_or_digest(&a.image) {
            println!("Using default tag: latest");
        }
        println!("{}: Pulling from {}", image::tag_or_digest(&r), r.path);
    }
    let display = Display::new("Downloading", "Download complete", "Already exists");
    let progress: &dyn registry::Progress = if a.quiet { &registry::Quiet } else { &display };
    let req = image::PullRequest {
        reference: a.image.clone(),
        platform: a.platform.clone(),
        insecure: a.insecure,
        credentials: None,
    };
    let pulled = image::pull(root, &req, progress)?;
    if !a.quiet {
        for d in display.transferred() {
            display.finish(&d, "Pull complete");
        }
        // Dropping the bars moves the cursor below them before the closing lines.
        drop(display);
        println!("Digest: {}", pulled.digest);
        if pulled.up_to_date {
            println!("Status: Image is up to date for {}", r.familiar());
        } else {
            println!("Status: Downloaded newer image for {}", r.familiar());
        }
    }
    println!("{r}");
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Use plain HTTP for this registry (always used for loopback registries)
    #[arg(long)]
    insecure: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    image: String,
}

pub fn push(root: &Path, a: PushArgs) -> anyhow::Result<()> {
    let r = ImageRef::parse_tagged(&a.image)?;
    if !a.quiet {
        if !has_tag_or_digest(&a.image) {
            println!("Using default tag: latest");
        }
        println!("The push refers to repository [{}]", r.repository());
    }
    let display = Display::new("Pushing", "Pushed", "Layer already exists");
    let progress: &dyn registry::Progress = if a.quiet { &registry::Quiet } else { &display };
    let req = image::PushRequest {
        reference: a.image.clone(),
        insecure: a.insecure,
        credentials: None,
    };
    let (_, pushed) = image::push(root, &req, progress)?;
    if !a.quiet {
        println!(
            "{}: digest: {} size: {}",
            r.tag.as_deref().unwrap_or("latest"),
            pushed.digest,
            pushed.size
        );
    } else {
        println!("{r}");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// Use plain HTTP for this registry (always used for loopback registries)
    #[arg(long)]
    insecure: bool,
    server: Option<String>,
}

fn server_name(s: Option<&str>) -> String {
    let s = s.unwrap_or(DEFAULT_DOMAIN);
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    s.split('/').next().unwrap_or(s).to_string()
}

pub fn login(a: LoginArgs) -> anyhow::Result<()> {
    let server = server_name(a.server.as_deref());
    let Some(user) = a.username else {
        bail!("username is required: use -u USER");
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().read_to_string(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("password is required: use -p or --password-stdin"),
    };
    if password.is_empty() {
        bail!("password is required: it was empty");
    }
    image::login(&server, &user, &password, a.insecure, true).context("login failed")?;
    println!("Login Succeeded");
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    server: Option<String>,
}

pub fn logout(a: LogoutArgs) -> anyhow::Result<()> {
    let server = server_name(a.server.as_deref());
    if credentials::remove(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}
