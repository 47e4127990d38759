//! Options of the media actions, which run on the call: talk, play, digits, echo,
//! recording, hangup, amd, external media, transcription.

option_struct! {
    /// `talk`: speak text (plain or SSML) with TTS (seed 003, "Talk").
    TalkOption {
        /// Plain text or SSML.
        req text: String,
        /// BCP 47 language, for example `en-US`.
        opt language: String,
        /// male, female or neutral.
        opt gender: String,
        /// The TTS provider.
        opt provider: String,
        /// The provider's voice id.
        opt voice_id: String,
        /// `next`: a key press during the talk moves on at once.
        opt digits_handle: String,
        /// true: go on at once while the speech plays.
        opt asynchronous as "async": bool,
    }
}

option_struct! {
    /// `play`: play media files in order.
    PlayOption {
        /// URLs (http, https) or files under the data dir.
        req stream_urls: Vec<String>,
    }
    aliases { "stream_url" => "stream_urls" }
}

option_struct! {
    /// `digits_receive`: collect DTMF keys into `voipbin.call.digits`.
    DigitsReceiveOption {
        /// Milliseconds to wait.
        opt duration: i64,
        /// End after this many keys.
        opt length: i64,
        /// Terminator keys: any of these ends the collection.
        opt key: String,
    }
}

option_struct! {
    /// `digits_send`: send DTMF keys.
    DigitsSendOption {
        /// 0-9, A-D, # and *; at most 100.
        req digits: String,
        /// Tone length per key, 100-1000 ms.
        opt duration: i64,
        /// Gap between keys, 0-5000 ms.
        opt interval: i64,
    }
}

option_struct! {
    /// `echo` and `stream_echo`: send the caller's audio back.
    EchoOption {
        /// Milliseconds; default 180000.
        opt duration: i64,
    }
}

option_struct! {
    /// `recording_start` (also spelled `record_start`).
    RecordingStartOption {
        /// wav, mp3 or ogg.
        opt format: String,
        /// Stop after this many seconds of silence; 0 for never.
        opt end_of_silence: i64,
        /// none, any, * or #.
        opt end_of_key: String,
        /// Maximum length in seconds; 0 for no limit.
        opt duration: i64,
        /// Beep when the recording starts.
        opt beep_start: bool,
        /// A flow to run when the recording ends.
        opt on_end_flow_id: String,
    }
}

option_struct! {
    /// `record_voice`: record the caller into a variable (seed 001, call screening).
    RecordVoiceOption {
        /// Maximum length in ms.
        opt duration: i64,
        /// End after this much silence, in ms.
        opt silence_timeout: i64,
        /// The variable that receives the recording.
        opt variable_name: String,
    }
}

option_struct! {
    /// `moh_start`: music on hold (seed 001).
    MohStartOption {
        /// The music class.
        opt music_class: String,
    }
}

option_struct! {
    /// `hangup`: end the call.
    HangupOption {
        /// normal, busy, ...; default normal.
        opt reason: String,
        /// Hang up with the same reason as this call.
        opt reference_id: String,
    }
}

option_struct! {
    /// `hangup_relay`: hang up with the reason of another call.
    HangupRelayOption {
        /// The call whose hangup reason is relayed.
        req reference_id: String,
    }
}

option_struct! {
    /// `amd`: answering machine detection, in both forms the seeds use.
    AmdOption {
        /// hangup or continue when a machine answers (seed 003).
        opt machine_handle: String,
        /// false: the flow waits for the verdict.
        opt asynchronous as "async": bool,
        /// An action id to jump to on a machine (seed 001).
        opt machine_action: String,
        /// An action id to jump to on a human (seed 001).
        opt human_action: String,
        /// Milliseconds to listen before a verdict (seed 001).
        opt timeout: i64,
    }
}

option_struct! {
    /// `external_media_start`: fork the call's media to an outside host.
    ExternalMediaStartOption {
        /// host:port of the receiver.
        req external_host: String,
        /// Default rtp.
        opt encapsulation: String,
        /// Default udp.
        opt transport: String,
        /// Transport data.
        opt transport_data: String,
        /// Default client.
        opt connection_type: String,
        /// Default ulaw.
        opt format: String,
        /// Default both.
        opt direction: String,
        /// Listen direction.
        opt direction_listen: String,
        /// Speak direction.
        opt direction_speak: String,
        /// Reserved.
        opt data: String,
    }
}

option_struct! {
    /// `transcribe_start` and `transcribe_recording`.
    TranscribeOption {
        /// BCP 47 language.
        opt language: String,
        /// A flow to run when the transcription ends.
        opt on_end_flow_id: String,
        /// The STT provider.
        opt provider: String,
        /// in, out or both (default).
        opt direction: String,
    }
}
