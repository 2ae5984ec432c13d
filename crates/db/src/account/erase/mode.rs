//! How to erase: a leaf both the erasure and its row removal use.

/// How to erase (upstream's DELETE_ACCOUNT_METHOD_OBFUSCATE / _WIPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Obfuscate,
    Wipe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Obfuscate => "obfuscate",
            Mode::Wipe => "wipe",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "obfuscate" => Some(Mode::Obfuscate),
            "wipe" => Some(Mode::Wipe),
            _ => None,
        }
    }
}
