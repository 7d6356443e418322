//! `gryning credentials`: create the credentials file, add, rotate and revoke principals'
//! tokens, and list the principals. A new token is shown once: on standard output only when
//! that is a terminal, otherwise only in the `--token-out` file (created with mode 0600); it
//! is never logged. Running servers pick the change up within a second or two.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use gryning_service_common::auth::{IssuedToken, Principal, Role};
use gryning_service_common::credentials;

#[derive(Args)]
pub(crate) struct CredentialsArgs {
    /// The credentials file (default: `credentials` in the settings, or credentials.toml in the
    /// data directory). Alone, `gryning credentials --file FILE` is `gryning credentials init`.
    #[arg(long, global = true)]
    file: Option<PathBuf>,
    /// Write new tokens to this file (created with mode 0600; it must not exist) instead of
    /// standard output, which shows them only when it is a terminal.
    #[arg(long, global = true, value_name = "FILE")]
    token_out: Option<PathBuf>,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Subcommand)]
enum Action {
    /// Create a new credentials file with one token per role (the file must not exist).
    Init,
    /// Add a principal with a new token.
    Add {
        #[arg(long)]
        principal: String,
        /// police, prosecution, care, analyst, auditor or admin.
        #[arg(long)]
        role: String,
        /// Bind a police or prosecution principal to one police region (`Syd` or
        /// `Polisregion Syd`): it may record only in cases of that region.
        #[arg(long, value_name = "REGION")]
        police_region: Option<String>,
        /// With --police-region: only cases of this local police area (repeat for several).
        #[arg(long = "local-police-area", value_name = "AREA")]
        local_police_areas: Vec<String>,
        /// Bind a care (social services) principal to its municipality: it may record only for
        /// clients that municipality's principals started.
        #[arg(long)]
        municipality: Option<String>,
    },
    /// Give a principal one new token (same role and scope); its old tokens stop working.
    Rotate {
        #[arg(long)]
        principal: String,
    },
    /// Remove every token of a principal.
    Revoke {
        #[arg(long)]
        principal: String,
    },
    /// List the principals with their roles and scopes (never tokens or hashes).
    List,
}

/// Where new tokens go: a terminal, or the `--token-out` file opened before anything changes.
enum Out {
    Terminal,
    File(PathBuf, std::fs::File),
}

impl Out {
    fn open(token_out: Option<&Path>) -> anyhow::Result<Out> {
        match token_out {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .with_context(|| {
                        format!(
                            "--token-out {}: cannot create it (it must not exist)",
                            path.display()
                        )
                    })?;
                Ok(Out::File(path.to_path_buf(), file))
            }
            None if std::io::stdout().is_terminal() => Ok(Out::Terminal),
            None => bail!(
                "standard output is not a terminal, and a new token is shown only on one: pass --token-out FILE (created with mode 0600) to receive it; nothing was changed"
            ),
        }
    }

    /// Drops an unused token file (the change failed).
    fn abandon(self) {
        if let Out::File(path, file) = self {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }

    fn write(self, tokens: &[IssuedToken]) -> anyhow::Result<()> {
        let mut text = String::new();
        for t in tokens {
            text.push_str(&format!(
                "token role={} principal={} {}\n",
                t.principal.role.name(),
                t.principal.name,
                t.token
            ));
        }
        match self {
            Out::Terminal => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                eprintln!("keep the token(s) above: they are shown once and not stored");
            }
            Out::File(path, mut file) => {
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("--token-out {}", path.display()))?;
                eprintln!(
                    "wrote the new token(s) to {} (mode 0600); they are not stored anywhere else",
                    path.display()
                );
            }
        }
        Ok(())
    }
}

fn issue(
    token_out: Option<&Path>,
    change: impl FnOnce() -> anyhow::Result<Vec<IssuedToken>>,
) -> anyhow::Result<()> {
    let out = Out::open(token_out)?;
    match change() {
        Ok(tokens) => out.write(&tokens),
        Err(e) => {
            out.abandon();
            Err(e)
        }
    }
}

pub(crate) fn run(args: CredentialsArgs, default_file: PathBuf) -> anyhow::Result<()> {
    let file = args.file.unwrap_or(default_file);
    let token_out = args.token_out.as_deref();
    match args.action.unwrap_or(Action::Init) {
        Action::Init => {
            if file.exists() {
                bail!("{} already exists: its tokens were shown when it was created and cannot be shown again; add principals with `gryning credentials add`, or rotate their tokens", file.display());
            }
            issue(token_out, || {
                let (_, issued) = gryning_service_common::auth::Credentials::load_or_create(&file)?;
                Ok(issued)
            })?;
            eprintln!("wrote {} (token hashes only, mode 0600)", file.display());
        }
        Action::Add {
            principal,
            role,
            police_region,
            local_police_areas,
            municipality,
        } => {
            let Some(parsed) = Role::parse(&role) else {
                bail!("--role {role:?} is not one of police, prosecution, care, analyst, auditor, admin");
            };
            let scope = credentials::scope_of(
                parsed,
                police_region.as_deref(),
                &local_police_areas,
                municipality.as_deref(),
            )
            .map_err(|rule| anyhow::anyhow!("--{}", rule.replace('_', "-")))?;
            let principal = Principal {
                name: principal,
                role: parsed,
                scope,
            };
            issue(token_out, || Ok(vec![credentials::add(&file, principal)?]))?;
            eprintln!(
                "added to {}; running servers take it within seconds",
                file.display()
            );
        }
        Action::Rotate { principal } => {
            issue(token_out, || {
                Ok(vec![credentials::rotate(&file, &principal)?])
            })?;
            eprintln!(
                "rotated in {}; the old token stops working within seconds",
                file.display()
            );
        }
        Action::Revoke { principal } => {
            let removed = credentials::revoke(&file, &principal)?;
            eprintln!(
                "revoked {removed} token(s) of {principal} in {}; running servers refuse them within seconds",
                file.display()
            );
        }
        Action::List => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "principal\trole\tscope")?;
            for p in credentials::list(&file)? {
                writeln!(out, "{}\t{}\t{}", p.name, p.role.name(), p.scope.describe())?;
            }
        }
    }
    Ok(())
}
