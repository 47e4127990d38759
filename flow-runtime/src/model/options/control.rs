//! Options of the control actions, which the interpreter runs without leaving it:
//! goto, branch, the conditions, variable_set, fetch, fetch_flow.

use std::collections::BTreeMap;

option_struct! {
    /// `goto`: jump to `target_id`, at most `loop_count` times (seed 003, "Goto").
    GotoOption {
        /// The action to jump to.
        req target_id: String,
        /// How many times this goto jumps; 0 or absent never jumps.
        opt loop_count: i64,
    }
}

option_struct! {
    /// `branch`: pick the next action by a variable's value (seed 003, "Branch").
    BranchOption {
        /// The variable to read; default `voipbin.call.digits`.
        opt variable: String,
        /// Where to go when no key of `target_ids` matches.
        opt default_target_id: String,
        /// Value -> action id.
        opt target_ids: BTreeMap<String, String>,
    }
}

option_struct! {
    /// `condition_call_digits` (deprecated): the digits' length or a contained key.
    ConditionCallDigitsOption {
        /// Match when at least this many digits were received.
        opt length: i64,
        /// Match when the digits contain this string.
        opt key: String,
        /// Where to go when the condition does not hold.
        opt false_target_id: String,
    }
}

option_struct! {
    /// `condition_call_status` (deprecated): the call's status.
    ConditionCallStatusOption {
        /// dialing, ringing, progressing, terminating, canceling or hangup.
        opt status: String,
        /// Where to go when the condition does not hold.
        opt false_target_id: String,
    }
}

option_struct! {
    /// `condition_datetime`: compare the UTC time (seed 003, "Condition Datetime").
    ConditionDatetimeOption {
        /// One of `==`, `!=`, `>`, `>=`, `<`, `<=`.
        req condition: String,
        /// Minute; -1 for any.
        opt minute: i64,
        /// Hour; -1 for any.
        opt hour: i64,
        /// Day of month; -1 for any.
        opt day: i64,
        /// Month; 0 for any.
        opt month: i64,
        /// Weekdays that match, 0 = Sunday .. 6 = Saturday; empty for any.
        opt weekdays: Vec<i64>,
        /// Where to go when the condition does not hold.
        opt false_target_id: String,
    }
}

option_struct! {
    /// `condition_variable`: compare a substituted value (seed 003, "Condition Variable").
    ConditionVariableOption {
        /// One of `==`, `!=`, `>`, `>=`, `<`, `<=`.
        req condition: String,
        /// The value to test, normally `${name}`.
        opt variable: String,
        /// `string`, `number` or `length`.
        req value_type: String,
        /// The operand for `string`.
        opt value_string: String,
        /// The operand for `number`.
        opt value_number: f64,
        /// The operand for `length`.
        opt value_length: i64,
        /// Where to go when the condition does not hold.
        opt false_target_id: String,
    }
}

option_struct! {
    /// `variable_set`: set one variable (value substituted at set time).
    VariableSetOption {
        /// The variable's name.
        req key: String,
        /// The value; `${...}` is substituted.
        opt value: String,
    }
}

option_struct! {
    /// `fetch`: load actions over HTTP and run them as a nested stack.
    FetchOption {
        /// Where to fetch the actions from.
        req event_url: String,
        /// The HTTP method (default POST).
        opt event_method: String,
    }
}

option_struct! {
    /// `fetch_flow`: run a stored flow's actions as a nested stack.
    FetchFlowOption {
        /// The flow to run.
        req flow_id: String,
    }
}

option_struct! {
    /// `sleep`: wait `duration` ms.
    SleepOption {
        /// Milliseconds.
        req duration: i64,
    }
}
