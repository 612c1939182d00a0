//! Where an agent's outgoing request goes, read from its URI, and whether its grants allow it.

use http::Uri;
use hypervisor_protocol::agents::valid_name;
use hypervisor_protocol::grants::{
    AGENTS_AUTHORITY_SUFFIX, AgentRef, Grants, HOST_AUTHORITY, HypervisorGrant,
};

use crate::net::Origin;

/// The destination of one outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An agent on this host (`http://NAME.agents.internal/…`).
    Agent(String),
    /// The host's own routes (`http://hypervisor.internal/…`).
    Host,
    /// Anything else: a remote origin.
    Remote(Origin),
    /// Not an absolute `http(s)` URI, or a reserved name that is not an agent name.
    Invalid,
}

impl Destination {
    /// The destination of `uri`.
    pub fn of(uri: &Uri) -> Self {
        let Some(origin) = Origin::of(uri) else {
            return Self::Invalid;
        };
        let host = origin.host();
        if host == HOST_AUTHORITY {
            return Self::Host;
        }
        if let Some(name) = host.strip_suffix(AGENTS_AUTHORITY_SUFFIX) {
            return if valid_name(name) {
                Self::Agent(name.to_string())
            } else {
                Self::Invalid
            };
        }
        Self::Remote(origin)
    }
}

/// The grant naming agent `name`, if any.
pub fn agent_grant<'g>(grants: &'g Grants, name: &str) -> Option<&'g AgentRef> {
    grants.agents.iter().find(|g| g.name == name)
}

/// The grant of the hypervisor at `origin`, if any.
pub fn hypervisor_grant<'g>(grants: &'g Grants, origin: &Origin) -> Option<&'g HypervisorGrant> {
    grants
        .hypervisors
        .iter()
        .find(|h| Origin::parse(&h.origin).is_ok_and(|o| &o == origin))
}

/// Whether `origin` is one of the granted origins.
pub fn origin_granted(grants: &Grants, origin: &Origin) -> bool {
    grants
        .origins
        .iter()
        .any(|o| Origin::parse(o).is_ok_and(|o| &o == origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_by_authority() {
        let d = |s: &str| Destination::of(&s.parse::<Uri>().unwrap());
        assert_eq!(
            d("http://seller.agents.internal/invoke"),
            Destination::Agent("seller".into())
        );
        assert_eq!(d("http://hypervisor.internal/search"), Destination::Host);
        assert_eq!(d("http://Bad_Name.agents.internal/"), Destination::Invalid);
        assert_eq!(d("/relative"), Destination::Invalid);
        assert_eq!(
            d("https://api.example.com/x"),
            Destination::Remote(Origin::parse("https://api.example.com").unwrap())
        );
        let grants = Grants {
            origins: vec!["https://api.example.com".into()],
            ..Grants::default()
        };
        assert!(origin_granted(
            &grants,
            &Origin::parse("https://api.example.com:443/y").unwrap()
        ));
        assert!(!origin_granted(
            &grants,
            &Origin::parse("http://api.example.com").unwrap()
        ));
    }
}
