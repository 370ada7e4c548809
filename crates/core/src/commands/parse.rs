//! Parsing what a user types to the bridge bot.

use crate::ids::{AdapterKind, TenantId};

/// A bot command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Lists the commands.
    Help,
    /// Shows the adapters' health of the tenants the user administers.
    Status {
        /// Only this tenant.
        tenant: Option<TenantId>,
    },
    /// Links the user's own account on a platform.
    Link {
        /// The platform.
        kind: AdapterKind,
        /// The tenant, when the user could mean several.
        tenant: Option<TenantId>,
    },
    /// Forgets the user's linked account on a platform.
    Unlink {
        /// The platform.
        kind: AdapterKind,
        /// The tenant, when the user could mean several.
        tenant: Option<TenantId>,
    },
}

/// What the bot answers to `help` (and greets with).
pub(crate) const HELP: &str = "I am the bridge bot. Commands:\n\
    • help: this list\n\
    • status [tenant]: the bridge status of the tenants you administer\n\
    • link <platform> [tenant]: link your own account on a platform (e.g. link teams)\n\
    • unlink <platform> [tenant]: forget your linked account on a platform";

/// Parses one message; the error is the answer to show.
pub(crate) fn parse(text: &str) -> Result<Command, String> {
    let text = text.trim();
    let text = text.strip_prefix('!').unwrap_or(text);
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((verb, args)) = words.split_first() else { return Ok(Command::Help) };
    let verb = verb.to_lowercase();
    match (verb.as_str(), args) {
        ("help", []) => Ok(Command::Help),
        ("status", []) => Ok(Command::Status { tenant: None }),
        ("status", [tenant]) => Ok(Command::Status { tenant: Some(tenant_id(tenant)?) }),
        ("link" | "unlink", []) => Err(format!("Which platform? Say `{verb} <platform>`, e.g. `{verb} teams`.")),
        ("link" | "unlink", [kind, rest @ ..]) if rest.len() <= 1 => {
            let kind =
                AdapterKind::new(kind.to_lowercase()).map_err(|_| format!("`{kind}` is not a platform name."))?;
            let tenant = rest.first().map(|t| tenant_id(t)).transpose()?;
            Ok(if verb == "link" { Command::Link { kind, tenant } } else { Command::Unlink { kind, tenant } })
        }
        ("help" | "status" | "link" | "unlink", _) => {
            Err(format!("Too many words for `{verb}`. Say `help` for the commands."))
        }
        _ => {
            Err(format!("I do not know `{}`. Say `help` for the commands.", verb.chars().take(40).collect::<String>()))
        }
    }
}

fn tenant_id(raw: &str) -> Result<TenantId, String> {
    TenantId::new(raw.to_lowercase())
        .map_err(|_| format!("`{}` is not a tenant id.", raw.chars().take(40).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(k: &str) -> AdapterKind {
        AdapterKind::new(k).unwrap()
    }

    #[test]
    fn commands_and_their_arguments_parse() {
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("  !HELP "), Ok(Command::Help));
        assert_eq!(parse("status"), Ok(Command::Status { tenant: None }));
        assert_eq!(parse("status FK"), Ok(Command::Status { tenant: Some(TenantId::new("fk").unwrap()) }));
        assert_eq!(parse("link Teams"), Ok(Command::Link { kind: kind("teams"), tenant: None }));
        assert_eq!(
            parse("unlink teams tv"),
            Ok(Command::Unlink { kind: kind("teams"), tenant: Some(TenantId::new("tv").unwrap()) })
        );
    }

    #[test]
    fn bad_input_gets_a_clear_answer() {
        assert!(parse("link").unwrap_err().contains("Which platform"));
        assert!(parse("link teams fk extra").unwrap_err().contains("Too many words"));
        assert!(parse("status a b").unwrap_err().contains("Too many words"));
        assert!(parse("teleport me").unwrap_err().contains("I do not know `teleport`"));
        assert!(parse("status Bad/Tenant").unwrap_err().contains("not a tenant id"));
        assert!(parse("link te/ams").unwrap_err().contains("not a platform"));
    }
}
