//! No webhook request panics the signature checks or the field parsing of the provider
//! webhooks (`cloud::fuzzing::webhook`): arbitrary signature headers, queries and bodies, and
//! Vonage JWTs with any claims. The fuzz target `webhook` in `fuzz/` searches the same entry
//! point for longer.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_request(signature in ".{0,120}", query in ".{0,80}", body in proptest::collection::vec(any::<u8>(), 0..400)) {
        cloud::fuzzing::webhook(&signature, &query, &body);
    }

    #[test]
    fn form_shaped_request(
        fields in proptest::collection::vec(("[A-Za-z]{1,12}", "[ -~]{0,24}"), 0..10),
        query in "(ev=[a-z]{0,8}&)?(seq=[0-9]{0,4})?",
    ) {
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('&', "%26")))
            .collect::<Vec<_>>()
            .join("&");
        cloud::fuzzing::webhook("", &query, body.as_bytes());
    }

    #[test]
    fn json_shaped_request(
        from in "[0-9+a-z]{0,16}",
        status in "(started|answered|completed|failed|busy|timeout|)",
        iat in any::<i64>(),
        digits in "[0-9#*]{0,4}",
    ) {
        let body = format!(
            r#"{{"from":"{from}","to":"3220000000","conversation_uuid":"CON-1","status":"{status}","dtmf":{{"digits":"{digits}"}},"iat":{iat},"payload_hash":"00"}}"#
        );
        cloud::fuzzing::webhook("Bearer a.b.c", "", body.as_bytes());
    }
}
