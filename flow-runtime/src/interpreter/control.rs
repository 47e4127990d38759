//! The control actions, run inside the interpreter without leaving it: goto, branch,
//! the conditions and variable_set (reference section 2.5).

use std::cmp::Ordering;

use super::datetime::Civil;
use super::variables::Variables;
use super::{Millis, Step};
use crate::model::ActionId;
use crate::model::options::control::{
    BranchOption, ConditionCallDigitsOption, ConditionDatetimeOption, ConditionVariableOption,
};

/// The default variable of `branch`.
pub const DIGITS: &str = "voipbin.call.digits";
/// The call status variable the host keeps up to date.
pub const CALL_STATUS: &str = "voipbin.call.status";

/// Whether `ordering` satisfies operator `op` (`==`, `!=`, `>`, `>=`, `<`, `<=`);
/// an unknown operator never matches.
fn holds(op: &str, ordering: Ordering) -> bool {
    match op {
        "==" => ordering == Ordering::Equal,
        "!=" => ordering != Ordering::Equal,
        ">" => ordering == Ordering::Greater,
        ">=" => ordering != Ordering::Less,
        "<" => ordering == Ordering::Less,
        "<=" => ordering != Ordering::Greater,
        _ => false,
    }
}

/// Next when `matched`, else the false target (or next when there is none).
fn on_condition(matched: bool, false_target: &Option<String>) -> Step {
    if matched {
        return Step::Next;
    }
    match false_target.as_deref().and_then(ActionId::target) {
        Some(t) => Step::Jump(t),
        None => Step::Next,
    }
}

/// `branch`: reads the variable (default `voipbin.call.digits`), resets it to "" as
/// the original does, and jumps to the matching target or the default. With neither,
/// it goes on to the next action; the original stops the activeflow there, and we
/// are kinder on purpose.
pub fn branch(o: &BranchOption, vars: &mut Variables) -> (Step, Option<String>) {
    let name = o
        .variable
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or(DIGITS)
        .trim()
        .to_owned();
    let value = vars.get(&name).to_owned();
    // Resetting to "" cannot exceed a cap: it only shrinks the value.
    let reset = vars.set(&name, "").ok().map(|()| name);
    let target = o
        .target_ids
        .as_ref()
        .and_then(|t| t.get(&value))
        .and_then(|t| ActionId::target(t))
        .or_else(|| o.default_target_id.as_deref().and_then(ActionId::target));
    (target.map_or(Step::Next, Step::Jump), reset)
}

/// `condition_variable`: compares the (already substituted) `variable` with the
/// operand of `value_type` (string, number or length).
pub fn condition_variable(o: &ConditionVariableOption) -> Step {
    let op = o.condition.as_deref().unwrap_or("");
    let value = o.variable.as_deref().unwrap_or("");
    let matched = match o.value_type.as_deref().unwrap_or("") {
        "string" => holds(op, value.cmp(o.value_string.as_deref().unwrap_or(""))),
        "number" => match (value.trim().parse::<f64>(), o.value_number) {
            (Ok(n), Some(want)) => n.partial_cmp(&want).is_some_and(|ord| holds(op, ord)),
            (Ok(n), None) => n.partial_cmp(&0.0).is_some_and(|ord| holds(op, ord)),
            (Err(_), _) => false,
        },
        "length" => {
            let len = i64::try_from(value.len()).unwrap_or(i64::MAX);
            holds(op, len.cmp(&o.value_length.unwrap_or(0)))
        }
        _ => false,
    };
    on_condition(matched, &o.false_target_id)
}

/// `condition_datetime`: compares the current UTC time with the option.
///
/// Fields set to a wildcard (-1 for minute, hour and day; 0 for month) are left out;
/// the others are compared as one value, most significant first, with `now` on the
/// left: `>=` with hour 8 and minute 0 means "at or after 08:00". This is how seed
/// 003's example reads; the original compares each field on its own with the option
/// on the left, which makes `>=` mean "before". `weekdays`, when not empty, must
/// contain today.
pub fn condition_datetime(o: &ConditionDatetimeOption, now: Millis) -> Step {
    let civil = Civil::from_unix_millis(now);
    let weekday_ok = o
        .weekdays
        .as_ref()
        .is_none_or(|days| days.is_empty() || days.contains(&civil.weekday));
    let mut now_fields = Vec::with_capacity(4);
    let mut want_fields = Vec::with_capacity(4);
    for (want, wildcard, actual) in [
        (o.month, 0, civil.month),
        (o.day, -1, civil.day),
        (o.hour, -1, civil.hour),
        (o.minute, -1, civil.minute),
    ] {
        if let Some(w) = want
            && w != wildcard
            && !(wildcard == -1 && w < 0)
        {
            now_fields.push(actual);
            want_fields.push(w);
        }
    }
    let op = o.condition.as_deref().unwrap_or("");
    let time_ok = want_fields.is_empty() || holds(op, now_fields.cmp(&want_fields));
    on_condition(weekday_ok && time_ok, &o.false_target_id)
}

/// `condition_call_digits` (deprecated): at least `length` digits, or the digits
/// contain `key`.
pub fn condition_call_digits(o: &ConditionCallDigitsOption, vars: &Variables) -> Step {
    let digits = vars.get(DIGITS);
    let length = usize::try_from(o.length.unwrap_or(0)).unwrap_or(0);
    let key = o.key.as_deref().unwrap_or("");
    let matched =
        (length != 0 && digits.len() >= length) || (!key.is_empty() && digits.contains(key));
    on_condition(matched, &o.false_target_id)
}

/// `condition_call_status` (deprecated): the call's status equals `status`.
pub fn condition_call_status(
    status: Option<&str>,
    false_target: &Option<String>,
    vars: &Variables,
) -> Step {
    on_condition(
        status.is_some_and(|s| s == vars.get(CALL_STATUS)),
        false_target,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(op: &str, hour: i64, minute: i64) -> ConditionDatetimeOption {
        ConditionDatetimeOption {
            condition: Some(op.into()),
            hour: Some(hour),
            minute: Some(minute),
            day: Some(-1),
            month: Some(0),
            false_target_id: Some("closed".into()),
            ..Default::default()
        }
    }

    const AT_0930: Millis = 1_768_469_400_000; // 2026-01-15T09:30:00Z, a Thursday

    #[test]
    fn datetime_compares_now_against_the_option() {
        assert_eq!(condition_datetime(&dt(">=", 8, 0), AT_0930), Step::Next);
        assert_eq!(
            condition_datetime(&dt(">=", 10, 0), AT_0930),
            Step::Jump(ActionId::new("closed"))
        );
        assert_eq!(
            condition_datetime(&dt("<", 9, 45), AT_0930),
            Step::Next,
            "09:30 < 09:45"
        );
        assert_eq!(
            condition_datetime(&dt("==", -1, 30), AT_0930),
            Step::Next,
            "any hour, minute 30"
        );
    }

    #[test]
    fn datetime_weekdays_filter() {
        let mut o = dt(">=", -1, -1);
        o.weekdays = Some(vec![1, 2, 3, 5]);
        assert_eq!(
            condition_datetime(&o, AT_0930),
            Step::Jump(ActionId::new("closed")),
            "Thursday is 4"
        );
        o.weekdays = Some(vec![4]);
        assert_eq!(condition_datetime(&o, AT_0930), Step::Next);
    }

    #[test]
    fn variable_conditions() {
        let c = |t: &str, op: &str, v: &str| ConditionVariableOption {
            condition: Some(op.into()),
            variable: Some(v.into()),
            value_type: Some(t.into()),
            value_string: Some("abc".into()),
            value_number: Some(10.0),
            value_length: Some(3),
            false_target_id: Some("f".into()),
            ..Default::default()
        };
        assert_eq!(condition_variable(&c("string", "==", "abc")), Step::Next);
        assert_eq!(condition_variable(&c("string", "<", "abb")), Step::Next);
        assert_eq!(condition_variable(&c("number", ">", "10.5")), Step::Next);
        assert_eq!(
            condition_variable(&c("number", ">", "ten")),
            Step::Jump(ActionId::new("f")),
            "not a number"
        );
        assert_eq!(condition_variable(&c("length", "==", "xyz")), Step::Next);
        assert_eq!(
            condition_variable(&c("bogus", "==", "abc")),
            Step::Jump(ActionId::new("f"))
        );
    }

    #[test]
    fn branch_resets_and_falls_back() {
        let mut vars = Variables::default();
        vars.set(DIGITS, "2").ok();
        let o = BranchOption {
            target_ids: Some(
                [
                    ("1".to_owned(), "one".to_owned()),
                    ("2".to_owned(), "two".to_owned()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        assert_eq!(branch(&o, &mut vars).0, Step::Jump(ActionId::new("two")));
        assert_eq!(vars.get(DIGITS), "", "reset after reading");
        assert_eq!(
            branch(&o, &mut vars).0,
            Step::Next,
            "no match and no default: next"
        );
    }
}
