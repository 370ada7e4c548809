//! Who may do what through the bridge bot: tenant admins see their
//! tenants' status; any user of a tenant whose federation policy allows
//! their server may link their own account on its platforms.

use crate::ids::{AdapterKind, MatrixUserId, TenantId};
use crate::store::Tenant;

/// The tenants whose status `user` may see: the named one if they
/// administer it, else all they administer. The error is the answer.
pub(crate) fn status_scope<'a>(
    tenants: &'a [Tenant],
    user: &MatrixUserId,
    named: Option<&TenantId>,
) -> Result<Vec<&'a Tenant>, String> {
    let administered: Vec<&Tenant> = tenants.iter().filter(|t| t.settings.matrix_admins.contains(user)).collect();
    match named {
        // The same refusal whether or not the tenant exists: nothing leaks.
        Some(id) => match administered.into_iter().find(|t| &t.id == id) {
            Some(tenant) => Ok(vec![tenant]),
            None => Err(format!("You are not an administrator of tenant {id}, so I cannot show its status.")),
        },
        None if administered.is_empty() => {
            Err("You are not an administrator of any tenant of this bridge, so there is no status to show.".into())
        }
        None => Ok(administered),
    }
}

/// Whether `user` is a user of `tenant`: it is active and its federation
/// policy allows the user's server (its own homeserver always is).
pub(crate) fn serves(tenant: &Tenant, user: &MatrixUserId, own_server: &str) -> bool {
    let allowed = &tenant.settings.allowed_servers;
    let server = user.server_name();
    !tenant.suspended && (allowed.is_empty() || server == own_server || allowed.iter().any(|s| s == server))
}

/// The tenant whose `kind` adapter an account command of `user` is for,
/// among the tenants `offering` that platform. The error is the answer.
pub(crate) fn account_scope<'a>(
    offering: &'a [Tenant],
    user: &MatrixUserId,
    own_server: &str,
    verb: &str,
    kind: &AdapterKind,
    named: Option<&TenantId>,
) -> Result<&'a Tenant, String> {
    let candidates: Vec<&Tenant> = offering.iter().filter(|t| serves(t, user, own_server)).collect();
    if let Some(id) = named {
        return candidates
            .into_iter()
            .find(|t| &t.id == id)
            .ok_or_else(|| format!("Tenant {id} offers no {kind} accounts to users of {}.", user.server_name()));
    }
    match candidates.as_slice() {
        [] => Err(format!("No tenant of this bridge offers {kind} accounts to users of {}.", user.server_name())),
        [one] => Ok(one),
        several => {
            let names: Vec<String> = several.iter().map(|t| format!("{} ({})", t.id, t.display_name)).collect();
            Err(format!(
                "Several tenants offer {kind}: {}. Say `{verb} {kind} <tenant>` to pick one.",
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> MatrixUserId {
        MatrixUserId::new(id).unwrap()
    }

    fn tenant(id: &str, admins: &[&str], servers: &[&str]) -> Tenant {
        let mut t = Tenant::new(TenantId::new(id).unwrap(), id.to_uppercase());
        t.settings.matrix_admins = admins.iter().map(|a| user(a)).collect();
        t.settings.allowed_servers = servers.iter().map(|s| (*s).to_owned()).collect();
        t
    }

    #[test]
    fn only_admins_see_status_and_the_named_tenant_is_checked() {
        let tenants = [tenant("fk", &["@ann:hub"], &[]), tenant("tv", &["@ann:hub", "@bo:hub"], &[])];
        let ids = |r: Result<Vec<&Tenant>, String>| r.unwrap().iter().map(|t| t.id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(status_scope(&tenants, &user("@ann:hub"), None)), ["fk", "tv"]);
        assert_eq!(ids(status_scope(&tenants, &user("@bo:hub"), None)), ["tv"]);
        let tv = TenantId::new("tv").unwrap();
        assert_eq!(ids(status_scope(&tenants, &user("@bo:hub"), Some(&tv))), ["tv"]);
        let fk = TenantId::new("fk").unwrap();
        assert!(
            status_scope(&tenants, &user("@bo:hub"), Some(&fk))
                .unwrap_err()
                .contains("not an administrator of tenant fk")
        );
        let nosuch = TenantId::new("nosuch").unwrap();
        assert!(status_scope(&tenants, &user("@ann:hub"), Some(&nosuch)).unwrap_err().contains("nosuch"));
        assert!(status_scope(&tenants, &user("@eve:hub"), None).unwrap_err().contains("not an administrator of any"));
    }

    #[test]
    fn account_commands_follow_the_federation_policy_and_ask_when_ambiguous() {
        let teams = AdapterKind::new("teams").unwrap();
        let offering = [tenant("fk", &[], &["agency.example"]), tenant("tv", &[], &[])];
        let pick = |u: &str, named: Option<&str>| {
            let named = named.map(|n| TenantId::new(n).unwrap());
            account_scope(&offering, &user(u), "hub", "link", &teams, named.as_ref()).map(|t| t.id.to_string())
        };
        // Only tv serves other servers; fk serves agency.example and the hub itself.
        assert_eq!(pick("@eve:elsewhere.example", None), Ok("tv".into()));
        assert!(pick("@eve:elsewhere.example", Some("fk")).unwrap_err().contains("offers no teams accounts"));
        let ambiguous = pick("@ann:agency.example", None).unwrap_err();
        assert!(
            ambiguous.contains("fk (FK)") && ambiguous.contains("tv (TV)") && ambiguous.contains("link teams <tenant>")
        );
        assert_eq!(pick("@ann:hub", Some("fk")), Ok("fk".into()));
        let mut suspended = offering.clone();
        suspended[1].suspended = true;
        let none = account_scope(&suspended, &user("@eve:x.example"), "hub", "link", &teams, None).unwrap_err();
        assert!(none.contains("No tenant"), "{none}");
    }
}
