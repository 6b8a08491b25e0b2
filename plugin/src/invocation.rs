//! The CNI command and the environment parameters it requires (SPEC.md "Parameters" and each
//! operation's "Input"), validated once: a missing or malformed variable is error code 4 naming it.

use crate::env::Env;

/// A CNI operation (`CNI_COMMAND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Allocate addresses for an attachment.
    Add,
    /// Release an attachment's addresses.
    Del,
    /// Verify an attachment's addresses (0.4.0+).
    Check,
    /// Release this node's attachments not listed as valid (1.1.0).
    Gc,
    /// Can ADD be served? (1.1.0).
    Status,
    /// Supported versions.
    Version,
}

impl Command {
    /// Parses `CNI_COMMAND` (exact, upper case, as runtimes send it).
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    /// The name as in `CNI_COMMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }

    /// The variables this command requires besides `CNI_COMMAND`.
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Gc | Command::Status | Command::Version => &[],
        }
    }
}

/// An invalid environment (error code 4); the message names the variables.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `CNI_COMMAND` unset.
    #[error("required env variables [CNI_COMMAND] missing")]
    NoCommand,
    /// `CNI_COMMAND` is not a CNI operation.
    #[error("unknown CNI_COMMAND: {0}")]
    UnknownCommand(String),
    /// Variables the command requires are unset.
    #[error("required env variables [{}] missing", .0.join(","))]
    Missing(Vec<&'static str>),
    /// A variable has a value the spec forbids.
    #[error("{var}: {reason} (got {value:?})")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
}

/// The validated parameters of one invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The operation.
    pub command: Command,
    /// `CNI_CONTAINERID` ("" for GC, STATUS, VERSION).
    pub container_id: String,
    /// `CNI_NETNS` (unused: IPAM never enters the namespace, so DEL works when it is gone).
    pub netns: String,
    /// `CNI_IFNAME` ("" for GC, STATUS, VERSION).
    pub ifname: String,
    /// `CNI_ARGS` as given.
    pub args: String,
}

impl Invocation {
    /// Reads and validates the parameters `command` needs from `env`.
    pub fn from_env(env: &Env) -> Result<Invocation, EnvError> {
        let raw = env.var("CNI_COMMAND").ok_or(EnvError::NoCommand)?;
        let command = Command::parse(raw).ok_or_else(|| EnvError::UnknownCommand(raw.to_string()))?;
        let missing: Vec<&'static str> = command.required().iter().copied().filter(|v| env.var(v).is_none()).collect();
        if !missing.is_empty() {
            return Err(EnvError::Missing(missing));
        }
        let get = |name: &str| env.var(name).unwrap_or_default().to_string();
        let inv = Invocation {
            command,
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
        };
        if command.required().contains(&"CNI_CONTAINERID") {
            validate_container_id(&inv.container_id)?;
        }
        if command.required().contains(&"CNI_IFNAME") {
            validate_ifname(&inv.ifname)?;
        }
        Ok(inv)
    }
}

/// SPEC.md: starts with an alphanumeric character, then alphanumerics, `_`, `.` or `-`.
fn validate_container_id(id: &str) -> Result<(), EnvError> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        let reason = "must start with a letter or digit, then letters, digits, '_', '.' or '-'";
        return Err(EnvError::Invalid { var: "CNI_CONTAINERID", value: id.to_string(), reason });
    }
    Ok(())
}

/// Linux interface names, as libcni checks them: at most 15 bytes, not `.`/`..`, no `/`, `:` or
/// whitespace.
fn validate_ifname(name: &str) -> Result<(), EnvError> {
    let reason = if name.len() > 15 {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is not a valid interface name")
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("contains '/', ':' or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(EnvError::Invalid { var: "CNI_IFNAME", value: name.to_string(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SharedWriter;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            stdin: Box::new(std::io::empty()),
            stdin_is_terminal: false,
            stdout: SharedWriter::new(std::io::sink()),
            stderr: SharedWriter::new(std::io::sink()),
            files: Box::new(crate::config::NoFiles),
            hostname: None,
            state_dir: std::path::PathBuf::from("/nonexistent"),
        }
    }

    const FULL: [(&str, &str); 4] =
        [("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/run/netns/x"), ("CNI_IFNAME", "eth0"), ("CNI_ARGS", "A=B")];

    #[test]
    fn each_command_requires_its_variables() {
        assert_eq!(Invocation::from_env(&env(&[])), Err(EnvError::NoCommand));
        assert_eq!(Invocation::from_env(&env(&[("CNI_COMMAND", "FOO")])), Err(EnvError::UnknownCommand("FOO".into())));
        assert_eq!(
            Invocation::from_env(&env(&[("CNI_COMMAND", "ADD")])),
            Err(EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]))
        );
        assert_eq!(
            Invocation::from_env(&env(&[("CNI_COMMAND", "CHECK"), ("CNI_CONTAINERID", "c")])),
            Err(EnvError::Missing(vec!["CNI_NETNS", "CNI_IFNAME"]))
        );
        // DEL works without a netns (it may be gone).
        let del = Invocation::from_env(&env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "c"), ("CNI_IFNAME", "e")]));
        assert_eq!(del.unwrap().netns, "");
        for cmd in ["GC", "STATUS", "VERSION"] {
            assert!(Invocation::from_env(&env(&[("CNI_COMMAND", cmd)])).is_ok(), "{cmd}");
        }
        let mut vars = FULL.to_vec();
        vars.push(("CNI_COMMAND", "ADD"));
        let inv = Invocation::from_env(&env(&vars)).unwrap();
        assert_eq!((inv.command, inv.container_id.as_str(), inv.ifname.as_str()), (Command::Add, "c1", "eth0"));
        assert_eq!(inv.args, "A=B");
    }

    #[test]
    fn container_id_and_ifname_follow_the_spec() {
        for (var, bad) in [
            ("CNI_CONTAINERID", "-abc"),
            ("CNI_CONTAINERID", "a b"),
            ("CNI_IFNAME", "eth0/1"),
            ("CNI_IFNAME", "a-very-long-ifname"),
            ("CNI_IFNAME", ".."),
        ] {
            let mut vars = FULL.to_vec();
            vars.retain(|(k, _)| *k != var);
            vars.push((var, bad));
            vars.push(("CNI_COMMAND", "ADD"));
            match Invocation::from_env(&env(&vars)) {
                Err(EnvError::Invalid { var: v, .. }) => assert_eq!(v, var),
                other => panic!("{var}={bad}: {other:?}"),
            }
        }
        assert!(validate_container_id("abc_1.2-3").is_ok());
    }

    #[test]
    fn command_names_round_trip() {
        for c in [Command::Add, Command::Del, Command::Check, Command::Gc, Command::Status, Command::Version] {
            assert_eq!(Command::parse(c.as_str()), Some(c));
        }
        assert_eq!(Command::parse("add"), None);
    }
}
