//! One option struct per action type, grouped by family (STYLE.md: "one module per
//! action family"). Every field is optional at the type level so a flow round-trips
//! exactly as written; the fields an action cannot run without are marked `req` and
//! reported as missing at load time.

use serde_json::{Map, Value};

/// An action's typed `option` object.
pub trait ActionOption: Sized {
    /// Reads the option; returns it with the `(field, message)` problems found.
    fn read(option: &Map<String, Value>) -> (Self, Vec<(String, String)>);
    /// Writes the option back in canonical form, unknown keys included.
    fn write(&self) -> Map<String, Value>;
    /// Substitutes placeholders in every known field (see
    /// [`crate::model::option_value::OptionValue::substitute`]).
    fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>);
    /// Whether any known field holds a string with a `${...}` or `{{...}}`.
    fn has_placeholder(&self) -> bool;
}

/// Defines an option struct: its fields (`req` = required, `opt` = optional), the
/// aliases it accepts for its keys, and its [`ActionOption`] impl.
macro_rules! option_struct {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$fdoc:meta])* $mode:ident $field:ident $(as $key:literal)? : $ty:ty ),* $(,)?
        }
        $( aliases { $( $alias:literal => $canon:literal ),* $(,)? } )?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: Option<$ty>, )*
            /// Keys this action does not know, kept so nothing a user stored is lost.
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl $crate::model::options::ActionOption for $name {
            #[allow(unused_mut)]
            fn read(
                option: &serde_json::Map<String, serde_json::Value>,
            ) -> (Self, Vec<(String, String)>) {
                let aliases: &[(&str, &str)] = &[ $( $( ($alias, $canon) ),* )? ];
                let mut r = $crate::model::option_value::OptionReader::new(option, aliases);
                $( let $field: Option<$ty> = r.take(option_struct!(@key $field $($key)?)); )*
                let (extra, mut errors) = r.finish();
                $(
                    if option_struct!(@required $mode)
                        && $field.is_none()
                        && !errors.iter().any(|(f, _)| f == option_struct!(@key $field $($key)?))
                    {
                        errors.push((
                            option_struct!(@key $field $($key)?).to_owned(),
                            "missing required option".to_owned(),
                        ));
                    }
                )*
                (Self { $( $field, )* extra }, errors)
            }

            #[allow(unused_variables)]
            fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>) {
                $( if let Some(v) = &mut self.$field {
                    $crate::model::option_value::OptionValue::substitute(v, sub);
                } )*
            }

            fn has_placeholder(&self) -> bool {
                let found = std::cell::Cell::new(false);
                let probe = |text: &str| {
                    if $crate::interpreter::variables::has_placeholder(text) {
                        found.set(true);
                    }
                    None
                };
                // Probing on a copy keeps `self` untouched; options are small and this
                // runs once per action when a stack is pushed.
                let mut copy = self.clone();
                $crate::model::options::ActionOption::substitute(&mut copy, &probe);
                found.get()
            }

            #[allow(unused_mut)]
            fn write(&self) -> serde_json::Map<String, serde_json::Value> {
                let mut out = self.extra.clone();
                $( $crate::model::option_value::put(&mut out, option_struct!(@key $field $($key)?), &self.$field); )*
                out
            }
        }
    };
    (@key $field:ident $key:literal) => { $key };
    (@key $field:ident) => { stringify!($field) };
    (@required req) => { true };
    (@required opt) => { false };
}

pub mod ai;
pub mod control;
pub mod integration;
pub mod media;
pub mod routing;

option_struct! {
    /// The option of an action that takes none (answer, beep, stop, block, empty, ...).
    NoOption {}
}
