//! Options of the AI actions: ai_talk, ai_summary, ai_task and the older chatbot_talk.

use serde_json::Value;

option_struct! {
    /// `ai_talk`: a voice conversation with an AI agent (seeds 001 and 004).
    AiTalkOption {
        /// The AI (deprecated in favour of assistance_type/assistance_id).
        opt ai_id: String,
        /// `ai` or `team`.
        opt assistance_type: String,
        /// The AI or team.
        opt assistance_id: String,
        /// Seconds before the conversation ends.
        opt duration: i64,
        /// A system prompt given inline (seed 001).
        opt prompt: String,
        /// Tool definitions given inline (seed 001).
        opt tools: Value,
        /// Phrases that end the call (seed 001).
        opt end_call_phrases: Vec<String>,
        /// BCP 47 language.
        opt language: String,
    }
}

option_struct! {
    /// `ai_summary`: summarise a call, recording or transcript.
    AiSummaryOption {
        /// A flow to run when the summary is ready.
        opt on_end_flow_id: String,
        /// What to summarise: call, conference, recording, transcribe.
        opt reference_type: String,
        /// Its id.
        opt reference_id: String,
        /// BCP 47 language.
        opt language: String,
    }
}

option_struct! {
    /// `ai_task`: run an AI task without media.
    AiTaskOption {
        /// The AI (deprecated).
        opt ai_id: String,
        /// `ai` or `team`.
        opt assistance_type: String,
        /// The AI or team.
        opt assistance_id: String,
    }
}

option_struct! {
    /// `chatbot_talk`: the older name of an AI conversation.
    ChatbotTalkOption {
        /// The chatbot.
        opt chatbot_id: String,
        /// male, female or neutral.
        opt gender: String,
        /// BCP 47 language.
        opt language: String,
        /// Seconds.
        opt duration: i64,
    }
}
