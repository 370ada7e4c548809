//! The appservice registration file for the homeserver.

use brygga_core::naming::regex_escape;
use brygga_core::{AdapterKind, TenantId};
use ruma::api::appservice::{Namespace, Namespaces, Registration, RegistrationInit};

use crate::config::Config;

/// Builds the registration: exclusive ghost and alias namespaces for every
/// adapter kind of every tenant, plus the bot.
pub fn registration(config: &Config, tenants: &[TenantId], kinds: &[AdapterKind]) -> Registration {
    let namer = config.namer();
    let mut namespaces = Namespaces::new();
    for tenant in tenants {
        for kind in kinds {
            namespaces.users.push(Namespace::new(true, namer.ghost_namespace(kind, tenant)));
            namespaces.aliases.push(Namespace::new(true, namer.alias_namespace(kind, tenant)));
        }
    }
    let bot = config.bot_user_id();
    namespaces.users.push(Namespace::new(true, format!("^{}$", regex_escape(bot.as_str()))));
    let mut registration: Registration = RegistrationInit {
        id: config.appservice.id.clone(),
        url: Some(config.appservice.url.to_string().trim_end_matches('/').to_owned()),
        as_token: config.appservice.as_token.clone(),
        hs_token: config.appservice.hs_token.clone(),
        sender_localpart: config.appservice.bot_localpart.clone(),
        namespaces,
        rate_limited: Some(false),
        protocols: Some(kinds.iter().map(ToString::to_string).collect()),
    }
    .into();
    registration.receive_ephemeral = true;
    registration
}

/// Renders the registration as YAML, with the unstable MSC2409 key that
/// older homeservers read.
/// With `encryption`, it also asks for the appservice encryption extensions
/// (MSC3202 device lists, key counts and device masquerading; MSC4190
/// device management).
pub fn to_yaml(registration: &Registration, encryption: bool) -> Result<String, serde_yaml::Error> {
    let mut value = serde_yaml::to_value(registration)?;
    if let serde_yaml::Value::Mapping(map) = &mut value {
        map.insert("de.sorunome.msc2409.push_ephemeral".into(), true.into());
        if encryption {
            map.insert("org.matrix.msc3202".into(), true.into());
            map.insert("io.element.msc4190".into(), true.into());
        }
    }
    serde_yaml::to_string(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_per_tenant_and_kind() {
        let config = Config::from_yaml(
            r#"
homeserver: { url: "http://127.0.0.1:8008", server_name: "hub.example" }
appservice: { listen: "127.0.0.1:1", url: "http://127.0.0.1:1/", as_token: "aaaaaaaaaaaaaaaa", hs_token: "bbbbbbbbbbbbbbbb" }
"#,
        )
        .unwrap();
        let tenants = [TenantId::new("fk").unwrap(), TenantId::new("tv").unwrap()];
        let kinds = [AdapterKind::new("xmpp").unwrap()];
        let reg = registration(&config, &tenants, &kinds);
        let users: Vec<_> = reg.namespaces.users.iter().map(|n| n.regex.as_str()).collect();
        assert_eq!(users, ["@xmpp_fk_.*:hub\\.example", "@xmpp_tv_.*:hub\\.example", "^@brygga:hub\\.example$"]);
        assert!(reg.namespaces.users.iter().all(|n| n.exclusive));
        assert_eq!(reg.url.as_deref(), Some("http://127.0.0.1:1"));
        let yaml = to_yaml(&reg, false).unwrap();
        assert!(!yaml.contains("msc3202"), "{yaml}");
        let encrypted = to_yaml(&reg, true).unwrap();
        assert!(encrypted.contains("org.matrix.msc3202: true"), "{encrypted}");
        assert!(encrypted.contains("io.element.msc4190: true"), "{encrypted}");
        assert!(yaml.contains("receive_ephemeral: true"), "{yaml}");
        assert!(yaml.contains("de.sorunome.msc2409.push_ephemeral: true"), "{yaml}");
        assert!(yaml.contains("sender_localpart: brygga"), "{yaml}");
    }
}
