use serde::{Deserialize, Serialize};

/// Europace environment of an import: `TEST` (Europace's test mode, the default) or `PRODUCTION`
/// (real business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Environment {
    /// Europace test mode: cases are not real business.
    #[default]
    Test,
    /// Real business.
    Production,
}

/// The query parameter `environment` had a value other than `TEST` or `PRODUCTION`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment must be TEST or PRODUCTION")]
pub struct ParseEnvironmentError;

impl Environment {
    /// The wire name: `TEST` or `PRODUCTION`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Test => "TEST",
            Self::Production => "PRODUCTION",
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Environment {
    type Err = ParseEnvironmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TEST" => Ok(Self::Test),
            "PRODUCTION" => Ok(Self::Production),
            _ => Err(ParseEnvironmentError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_two_wire_names() {
        assert_eq!("TEST".parse(), Ok(Environment::Test));
        assert_eq!("PRODUCTION".parse(), Ok(Environment::Production));
        assert_eq!(
            "production".parse::<Environment>(),
            Err(ParseEnvironmentError)
        );
        assert_eq!("".parse::<Environment>(), Err(ParseEnvironmentError));
    }
}
