//! Text in several languages (`xml:lang`), as SAML metadata gives names and descriptions.

/// A text in Swedish, English and perhaps other languages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LocalizedText {
    /// `xml:lang="sv"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sv: Option<String>,
    /// `xml:lang="en"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
    /// The first text in another (or no) language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
}

impl LocalizedText {
    /// Records `text` in `lang` (the first text of each language wins).
    pub fn add(&mut self, lang: Option<&str>, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let slot = match lang.map(|l| l.split('-').next().unwrap_or(l).to_ascii_lowercase()) {
            Some(l) if l == "sv" => &mut self.sv,
            Some(l) if l == "en" => &mut self.en,
            _ => &mut self.other,
        };
        if slot.is_none() {
            *slot = Some(text.to_owned());
        }
    }

    /// The text in `lang` ("sv" or "en"), else in the other of the two, else any.
    pub fn get(&self, lang: &str) -> Option<&str> {
        let (first, second) = if lang == "en" {
            (&self.en, &self.sv)
        } else {
            (&self.sv, &self.en)
        };
        first
            .as_deref()
            .or(second.as_deref())
            .or(self.other.as_deref())
    }

    /// Whether there is no text at all.
    pub fn is_empty(&self) -> bool {
        self.sv.is_none() && self.en.is_none() && self.other.is_none()
    }
}
