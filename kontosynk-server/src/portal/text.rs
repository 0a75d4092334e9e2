//! The portal's words in Swedish (the default) and English.

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// Svenska.
    Sv,
    /// English.
    En,
}

impl Lang {
    /// From a `lang` parameter or cookie: `en` is English, anything else Swedish.
    pub(crate) fn from_code(code: Option<&str>) -> Option<Self> {
        match code? {
            "sv" => Some(Self::Sv),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The BCP 47 code.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Sv => "sv",
            Self::En => "en",
        }
    }

    /// The other language (the switch).
    pub(crate) fn other(self) -> Self {
        match self {
            Self::Sv => Self::En,
            Self::En => Self::Sv,
        }
    }

    /// The texts in this language.
    pub(crate) fn texts(self) -> &'static Texts {
        match self {
            Self::Sv => &SV,
            Self::En => &EN,
        }
    }
}

/// Every text of the page.
pub(crate) struct Texts {
    pub(crate) title: &'static str,
    pub(crate) skip: &'static str,
    pub(crate) language_nav: &'static str,
    pub(crate) language_name: &'static str,
    pub(crate) school_heading: &'static str,
    pub(crate) chosen: &'static str,
    pub(crate) change: &'static str,
    pub(crate) search_label: &'static str,
    pub(crate) search_hint: &'static str,
    pub(crate) search_button: &'static str,
    pub(crate) choose_prefix: &'static str,
    pub(crate) no_match: &'static str,
    pub(crate) showing_first: &'static str,
    pub(crate) services_heading: &'static str,
    pub(crate) choose_first: &'static str,
    pub(crate) website: &'static str,
    pub(crate) disabled: &'static str,
    pub(crate) not_for_school: &'static str,
    pub(crate) login_at: &'static str,
    pub(crate) no_services: &'static str,
    pub(crate) no_idps: &'static str,
    pub(crate) privacy: &'static str,
}

const SV: Texts = Texts {
    title: "Logga in i skolans tjänster",
    skip: "Hoppa till tjänsterna",
    language_nav: "Språk",
    language_name: "Svenska",
    school_heading: "Din skola",
    chosen: "Du loggar in via",
    change: "Byt skola",
    search_label: "Sök din skola, kommun eller huvudman",
    search_hint: "Skriv en del av namnet, till exempel kommunens namn.",
    search_button: "Sök",
    choose_prefix: "Välj",
    no_match: "Ingen skola matchar sökningen. Prova ett kortare ord.",
    showing_first: "Visar de första träffarna; skriv mer för att hitta din skola.",
    services_heading: "Tjänster",
    choose_first: "Välj din skola ovan, så leder knapparna direkt till inloggningen.",
    website: "Webbplats",
    disabled: "Inte tillgänglig just nu",
    not_for_school: "Inte tillgänglig för din skola",
    login_at: "Logga in i",
    no_services: "Inga tjänster är publicerade just nu.",
    no_idps: "Federationens lista över skolor kunde inte hämtas just nu. Försök igen om en stund.",
    privacy: "Sidan sparar bara ditt val av skola och språk i en kaka i din webbläsare. Ingen spårning, inga skript från andra.",
};

const EN: Texts = Texts {
    title: "Log in to school services",
    skip: "Skip to the services",
    language_nav: "Language",
    language_name: "English",
    school_heading: "Your school",
    chosen: "You log in with",
    change: "Change school",
    search_label: "Search for your school, municipality or school organizer",
    search_hint: "Type part of the name, for example the municipality's.",
    search_button: "Search",
    choose_prefix: "Choose",
    no_match: "No school matches the search. Try a shorter word.",
    showing_first: "Showing the first matches; type more to find your school.",
    services_heading: "Services",
    choose_first: "Choose your school above and the buttons lead straight to its login.",
    website: "Website",
    disabled: "Not available right now",
    not_for_school: "Not available for your school",
    login_at: "Log in to",
    no_services: "No services are published right now.",
    no_idps: "The federation's list of schools could not be fetched right now. Try again in a while.",
    privacy: "This page only keeps your choice of school and language in a cookie in your browser. No tracking, no third-party scripts.",
};
