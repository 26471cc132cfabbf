//! A DynamoDB Streams record as Lambda hands it to a function: the SDK's `Record` becomes
//! `aws_lambda_events`' `EventRecord`, attribute values and all, so that a handler sees locally
//! what it sees in Lambda.

use aws_lambda_events::event::dynamodb::{
    EventRecord, StreamRecord as EventStreamRecord, StreamViewType as EventViewType, UserIdentity,
};
use aws_sdk_dynamodbstreams::types::{AttributeValue, Identity, Record, StreamViewType};
use serde_dynamo::AttributeValue as EventValue;
use std::collections::HashMap;

/// What Lambda puts in `eventSource` for a DynamoDB stream.
const EVENT_SOURCE: &str = "aws:dynamodb";

/// A stream record that cannot become an event record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the record has no sequence number")]
    NoSequenceNumber,
    #[error("an attribute of the record has a type this SDK version does not know")]
    UnknownAttributeType,
}

/// The record as Lambda's event source mapping for the stream `stream_arn` hands it over.
pub(crate) fn event_record(record: Record, stream_arn: &str) -> Result<EventRecord, RecordError> {
    let change = record.dynamodb.ok_or(RecordError::NoSequenceNumber)?;
    let mut event_change = EventStreamRecord::default();
    if let Some(at) = change.approximate_creation_date_time {
        event_change.approximate_creation_date_time =
            chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).unwrap_or_default();
    }
    event_change.keys = item(change.keys)?;
    event_change.new_image = item(change.new_image)?;
    event_change.old_image = item(change.old_image)?;
    event_change.sequence_number = Some(
        change
            .sequence_number
            .ok_or(RecordError::NoSequenceNumber)?,
    );
    event_change.size_bytes = change.size_bytes.unwrap_or_default();
    event_change.stream_view_type = change.stream_view_type.and_then(view_type);

    let mut event = EventRecord::default();
    event.aws_region = record.aws_region.unwrap_or_default();
    event.change = event_change;
    event.event_id = record.event_id.unwrap_or_default();
    event.event_name = record
        .event_name
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    event.event_source = Some(
        record
            .event_source
            .unwrap_or_else(|| EVENT_SOURCE.to_owned()),
    );
    event.event_version = record.event_version;
    event.event_source_arn = Some(stream_arn.to_owned());
    event.user_identity = record.user_identity.map(user_identity);
    Ok(event)
}

fn item(
    attributes: Option<HashMap<String, AttributeValue>>,
) -> Result<serde_dynamo::Item, RecordError> {
    let converted = attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| Ok((name, value_of(value)?)))
        .collect::<Result<HashMap<_, _>, RecordError>>()?;
    Ok(serde_dynamo::Item::from(converted))
}

fn value_of(value: AttributeValue) -> Result<EventValue, RecordError> {
    Ok(match value {
        AttributeValue::S(s) => EventValue::S(s),
        AttributeValue::N(n) => EventValue::N(n),
        AttributeValue::Bool(b) => EventValue::Bool(b),
        AttributeValue::Null(null) => EventValue::Null(null),
        AttributeValue::B(bytes) => EventValue::B(bytes.into_inner()),
        AttributeValue::Ss(strings) => EventValue::Ss(strings),
        AttributeValue::Ns(numbers) => EventValue::Ns(numbers),
        AttributeValue::Bs(blobs) => {
            EventValue::Bs(blobs.into_iter().map(|b| b.into_inner()).collect())
        }
        AttributeValue::L(values) => {
            EventValue::L(values.into_iter().map(value_of).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => EventValue::M(
            map.into_iter()
                .map(|(name, value)| Ok((name, value_of(value)?)))
                .collect::<Result<_, RecordError>>()?,
        ),
        _ => return Err(RecordError::UnknownAttributeType),
    })
}

fn view_type(view: StreamViewType) -> Option<EventViewType> {
    match view {
        StreamViewType::NewImage => Some(EventViewType::NewImage),
        StreamViewType::OldImage => Some(EventViewType::OldImage),
        StreamViewType::NewAndOldImages => Some(EventViewType::NewAndOldImages),
        StreamViewType::KeysOnly => Some(EventViewType::KeysOnly),
        _ => None,
    }
}

fn user_identity(identity: Identity) -> UserIdentity {
    let mut user = UserIdentity::default();
    user.type_ = identity.r#type.unwrap_or_default();
    user.principal_id = identity.principal_id.unwrap_or_default();
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord};
    use serde_json::json;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/webhooks/stream/2026-01-01T00:00:00.000";

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    fn n(number: &str) -> AttributeValue {
        AttributeValue::N(number.to_owned())
    }

    fn record(new_image: HashMap<String, AttributeValue>) -> Record {
        Record::builder()
            .event_id("c4ca4238a0b923820dcc509a6f75849b")
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("eu-west-1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_767_225_600))
                    .keys("pk", s("SUB#1"))
                    .keys("sk", s("EVT#1"))
                    .set_new_image(Some(new_image))
                    .sequence_number("111000000000000000000001")
                    .size_bytes(321)
                    .stream_view_type(StreamViewType::NewImage)
                    .build(),
            )
            .build()
    }

    /// The event record in the JSON Lambda sends, which is what a handler's tests load.
    fn lambda_json(event: &EventRecord) -> serde_json::Value {
        serde_json::to_value(event).expect("an event record serializes")
    }

    #[test]
    fn every_attribute_type_comes_over_exactly() {
        let image = HashMap::from([
            ("pk".to_owned(), s("SUB#1")),
            ("text".to_owned(), s("héllo")),
            ("number".to_owned(), n("-12.500")),
            ("yes".to_owned(), AttributeValue::Bool(true)),
            ("nothing".to_owned(), AttributeValue::Null(true)),
            (
                "bytes".to_owned(),
                AttributeValue::B(Blob::new(vec![0, 1, 254, 255])),
            ),
            (
                "names".to_owned(),
                AttributeValue::Ss(vec!["a".to_owned(), "b".to_owned()]),
            ),
            (
                "counts".to_owned(),
                AttributeValue::Ns(vec!["1".to_owned(), "2.5".to_owned()]),
            ),
            (
                "blobs".to_owned(),
                AttributeValue::Bs(vec![Blob::new(vec![7]), Blob::new(vec![])]),
            ),
            (
                "nested".to_owned(),
                AttributeValue::M(HashMap::from([(
                    "list".to_owned(),
                    AttributeValue::L(vec![s("x"), n("1"), AttributeValue::M(HashMap::new())]),
                )])),
            ),
        ]);
        let event = event_record(record(image), ARN).expect("a convertible record");
        assert_eq!(
            lambda_json(&event)["dynamodb"]["NewImage"],
            json!({
                "pk": {"S": "SUB#1"},
                "text": {"S": "héllo"},
                "number": {"N": "-12.500"},
                "yes": {"BOOL": true},
                "nothing": {"NULL": true},
                "bytes": {"B": "AAH+/w=="},
                "names": {"SS": ["a", "b"]},
                "counts": {"NS": ["1", "2.5"]},
                "blobs": {"BS": ["Bw==", ""]},
                "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}]}}},
            })
        );
    }

    #[test]
    fn the_envelope_is_the_one_lambda_sends() {
        let event = event_record(record(HashMap::new()), ARN).expect("a convertible record");
        let json = lambda_json(&event);
        assert_eq!(json["eventID"], "c4ca4238a0b923820dcc509a6f75849b");
        assert_eq!(json["eventName"], "INSERT");
        assert_eq!(json["eventVersion"], "1.1");
        assert_eq!(json["eventSource"], "aws:dynamodb");
        assert_eq!(json["awsRegion"], "eu-west-1");
        assert_eq!(json["eventSourceARN"], ARN);
        let change = &json["dynamodb"];
        assert_eq!(change["ApproximateCreationDateTime"], 1_767_225_600.0);
        assert_eq!(
            change["Keys"],
            json!({"pk": {"S": "SUB#1"}, "sk": {"S": "EVT#1"}})
        );
        assert_eq!(change["SequenceNumber"], "111000000000000000000001");
        assert_eq!(change["SizeBytes"], 321);
        assert_eq!(change["StreamViewType"], "NEW_IMAGE");
        // And back: what a handler deserializes is what it was given.
        let again: EventRecord = serde_json::from_value(json).expect("an event record");
        assert_eq!(again, event);
    }

    #[test]
    fn a_time_to_live_deletion_says_who_deleted() {
        let mut sdk = record(HashMap::new());
        sdk.event_name = Some(OperationType::Remove);
        sdk.user_identity = Some(
            Identity::builder()
                .r#type("Service")
                .principal_id("dynamodb.amazonaws.com")
                .build(),
        );
        let event = event_record(sdk, ARN).expect("a convertible record");
        assert_eq!(event.event_name, "REMOVE");
        let identity = event.user_identity.expect("an identity");
        assert_eq!(identity.type_, "Service");
        assert_eq!(identity.principal_id, "dynamodb.amazonaws.com");
    }

    #[test]
    fn a_record_without_a_sequence_number_is_refused() {
        let mut sdk = record(HashMap::new());
        if let Some(change) = sdk.dynamodb.as_mut() {
            change.sequence_number = None;
        }
        assert!(matches!(
            event_record(sdk, ARN),
            Err(RecordError::NoSequenceNumber)
        ));
    }
}
