//! Origins and URLs compared as RFC 3986 §6 and RFC 9449 §4.3 say: `PUBLIC_URL`'s origins, a
//! request's `Origin`, a DPoP proof's `htu`.

/// `scheme://host[:port]` of an origin such as `PUBLIC_URL`'s (normalized as [`normalize`]);
/// `None` for a URL with a path, query, fragment or user.
pub fn origin(url: &str) -> Option<String> {
    if url.contains(['?', '#']) {
        return None;
    }
    let normalized = normalize(url)?;
    let origin = normalized.strip_suffix('/')?;
    let authority = &origin[origin.find("://")? + 3..];
    (!authority.contains('/')).then(|| origin.to_owned())
}

/// `scheme://host[:port]/path`, lowercased scheme and host, default port dropped, query and
/// fragment removed (RFC 9449 §4.3 and RFC 3986 §6). `None` for anything else.
pub fn normalize(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split(['?', '#']).next()?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    if authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    Some(format!("{scheme}://{authority}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_as_rfc_9449_says() {
        assert_eq!(normalize("HTTPS://Example.COM:443/api/x?q=1#f").as_deref(), Some("https://example.com/api/x"));
        assert_eq!(normalize("http://127.0.0.1:3000/a").as_deref(), Some("http://127.0.0.1:3000/a"));
        assert_eq!(normalize("http://host").as_deref(), Some("http://host/"));
        for bad in ["/api/x", "ftp://h/x", "http://user@h/x", "http:///x"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(origin("HTTPS://Baton.Example.com:443").as_deref(), Some("https://baton.example.com"));
        assert_eq!(origin("http://localhost:3000/").as_deref(), Some("http://localhost:3000"));
        for bad in ["https://x.example/app", "https://x.example?q", "https://u@x.example", "x.example", "https://"] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }
}
