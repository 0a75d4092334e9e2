//! The dashboard's words in Swedish and English: one dictionary, rendered into the page by
//! the server (in the chosen language) and embedded for the page's language switch.

use std::fmt;
use std::str::FromStr;

/// A language of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Swedish: the people reading the page are Swedish school IT staff, so the default.
    #[default]
    Sv,
    /// English.
    En,
}

impl Lang {
    /// The language tag (`sv`, `en`).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// The first of `sv` or `en` in an `Accept-Language` header, by quality then order;
    /// `None` when it names neither (then the operator's `--lang` applies).
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = range.split('-').next().unwrap_or("");
            let lang = match primary {
                "sv" => Lang::Sv,
                "en" => Lang::En,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The text for `key` in this language (the key itself when unknown, so a missing word
    /// shows instead of vanishing).
    pub fn t(self, key: &str) -> &'static str {
        WORDS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("?", |(_, sv, en)| match self {
                Lang::Sv => sv,
                Lang::En => en,
            })
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A language other than `sv` or `en` was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?}: use sv (svenska) or en (English)")]
pub struct UnknownLang(String);

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sv" | "sv-se" | "swedish" | "svenska" => Ok(Lang::Sv),
            "en" | "en-gb" | "en-us" | "english" => Ok(Lang::En),
            other => Err(UnknownLang(other.to_owned())),
        }
    }
}

/// `(key, Swedish, English)`. `{n}` and `{d}` are filled in by the page.
pub const WORDS: &[(&str, &str, &str)] = &[
    ("checked", "Kontrollerad", "Checked"),
    ("metadata", "metadata", "metadata"),
    ("valid_until", "giltig till", "valid until"),
    ("total", "servrar", "servers"),
    ("unhealthy", "fel", "unhealthy"),
    (
        "refused_client",
        "nekar vårt klientcertifikat",
        "refuse our client certificate",
    ),
    ("warning", "varningar", "warnings"),
    ("healthy", "fungerar", "healthy"),
    ("pending", "inte kontrollerade än", "not checked yet"),
    (
        "expiring",
        "certifikat går ut inom {d} dagar",
        "certificates expiring within {d} days",
    ),
    ("s_unhealthy", "FEL", "FAIL"),
    ("s_refused_client", "Nekar oss", "Refuses us"),
    ("s_warning", "Varning", "Warning"),
    ("s_healthy", "OK", "OK"),
    ("s_pending", "Ej kontrollerad", "Not checked yet"),
    (
        "search",
        "Sök organisation, org.nr, entitet, värd, tagg, pin",
        "Search organization, org. id, entity, host, tag, pin",
    ),
    ("all_states", "Alla lägen", "All states"),
    ("all_tags", "Alla taggar", "All tags"),
    ("c_state", "Läge", "State"),
    ("c_org", "Organisation", "Organization"),
    ("c_entity", "Entitet", "Entity"),
    ("c_host", "base_uri", "base_uri"),
    ("c_tags", "Taggar", "Tags"),
    ("c_pin", "Pin", "Pin"),
    ("c_expires", "Cert. dagar", "Cert. days"),
    ("c_http", "HTTP, svarstid", "HTTP, latency"),
    ("c_since", "Sedan", "Since"),
    ("c_uptime", "Historik", "History"),
    ("c_problem", "Problem", "Problem"),
    ("group", "{n} fungerande servrar", "{n} healthy servers"),
    ("show", "visa", "show"),
    ("hide", "dölj", "hide"),
    ("no_rows", "Inga servrar matchar.", "No server matches."),
    ("rows", "{n} rader", "{n} rows"),
    ("prev", "‹ Föregående", "‹ Previous"),
    ("next", "Nästa ›", "Next ›"),
    ("check_now", "Kontrollera nu", "Check now"),
    ("checking", "Kontrollerar…", "Checking…"),
    ("mismatch", "FEL PIN", "MISMATCH"),
    ("m", "min", "min"),
    ("h", "tim", "h"),
    ("d", "d", "d"),
    ("switch", "English", "Svenska"),
    (
        "expired_banner",
        "Metadata från {s} gick ut {t}: inga nya kontroller görs. Senaste kända resultat visas nedan.",
        "Metadata from {s} expired at {t}: no new checks run. The last known results are shown below.",
    ),
    (
        "valid_sources",
        "Fortfarande giltiga källor:",
        "Sources still valid:",
    ),
    (
        "footnote",
        "Kontrollerat med medlemmens klientcertifikat (ömsesidig TLS), som parterna ansluter. Fel: DNS/TCP/TLS-fel, pin som inte finns i metadata, utgånget certifikat, värdnamn som inte finns i certifikatet, HTTP 5xx eller inget svar. Nekar oss: nåbar, pin och certifikat rätt, men servern godtar inte vårt klientcertifikat.",
        "Checked with the member's client certificate (mutual TLS), as peers connect. Unhealthy: DNS/TCP/TLS failure, pin not in the metadata, expired certificate, host name not in the certificate, HTTP 5xx or no answer. Refuses us: reachable, pin and certificate fine, but the server does not accept our client certificate.",
    ),
    (
        "noscript",
        "Tabellen behöver JavaScript (inbäddat, inga externa skript).",
        "The table needs JavaScript (embedded, no external scripts).",
    ),
];

/// The dictionary as JSON for the page: `{"sv":{key:text,…},"en":{…}}`.
pub fn dictionary_json() -> String {
    let pick = |lang: Lang| -> serde_json::Map<String, serde_json::Value> {
        WORDS
            .iter()
            .map(|(k, _, _)| ((*k).to_owned(), lang.t(k).into()))
            .collect()
    };
    serde_json::json!({"sv": pick(Lang::Sv), "en": pick(Lang::En)}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_of_sv_and_en() {
        assert_eq!(
            Lang::from_accept_language("sv-SE,sv;q=0.9,en;q=0.8"),
            Some(Lang::Sv)
        );
        assert_eq!(
            Lang::from_accept_language("de, en-GB;q=0.7, sv;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0.3, sv;q=0.9"),
            Some(Lang::Sv)
        );
        assert_eq!(Lang::from_accept_language("fi, de"), None);
        assert_eq!(Lang::from_accept_language("sv;q=0"), None);
        assert_eq!(Lang::from_accept_language(""), None);
        assert_eq!("SV".parse::<Lang>(), Ok(Lang::Sv));
        assert!(
            "fi".parse::<Lang>()
                .unwrap_err()
                .to_string()
                .contains("use sv")
        );
    }

    #[test]
    fn every_word_has_both_languages() {
        for (key, sv, en) in WORDS {
            assert!(!sv.is_empty() && !en.is_empty(), "{key}");
            assert_eq!(
                WORDS.iter().filter(|(k, _, _)| k == key).count(),
                1,
                "{key} twice"
            );
        }
        assert_eq!(Lang::Sv.t("healthy"), "fungerar");
        assert_eq!(Lang::En.t("nope"), "?");
    }
}
