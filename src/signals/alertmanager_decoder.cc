// ParseAlertmanagerWebhook: decodes the webhook body in one pass of SAX events and fills
// WebhookPayload directly, without building a JSON document first. The events come from the fast
// reader in alertmanager_json_reader.h, or from nlohmann's parser when that reader gives up.
// Members the decoder does not read are skipped whatever their type or depth.
//
// The result is the one a document parser followed by lookups would give, and
// alertmanager_decoder_test.cc compares the two on random bodies. The decoder checks the
// body's shape only after the whole body has parsed, so invalid JSON is reported before a wrong
// version or a missing `alerts` list, wherever in the body each one is. When a key repeats in an
// object, the last value wins, as in nlohmann's document parser.

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "signals/alertmanager.h"
#include "signals/alertmanager_json_reader.h"

namespace backout::signals {
namespace {

using Json = nlohmann::json;

// The maximum `truncatedAlerts`: 2^53 - 1, the largest integer that a double represents exactly,
// so the Prometheus counter of truncated alerts (a double) counts it exactly.
constexpr int64_t kMaxTruncatedAlerts = (int64_t{1} << 53) - 1;

// The maximum length of a rejected value quoted in an error message, so a large body cannot
// fill the log.
constexpr size_t kMaxRenderedValue = 64;

// Renders a JSON value for an error message, in ASCII so that a cut cannot split a character.
std::string RenderValue(const Json& value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (text.size() > kMaxRenderedValue) {
    text.resize(kMaxRenderedValue - 3);
    text += "...";
  }
  return text;
}

// Alertmanager writes the zero time of Go for an alert that has not ended.
constexpr std::string_view kZeroTimePrefix = "0001-01-01";

// The members the decoder reads: those of the body and those of each alert.
enum class Field {
  kOther,
  kVersion,
  kGroupKey,
  kReceiver,
  kStatus,  // the body's and each alert's
  kExternalUrl,
  kTruncatedAlerts,
  kAlerts,
  kLabels,
  kAnnotations,
  kStartsAt,
  kEndsAt,
  kGeneratorUrl,
  kFingerprint,
};

Field BodyField(std::string_view key) {
  if (key == "alerts") return Field::kAlerts;
  if (key == "version") return Field::kVersion;
  if (key == "status") return Field::kStatus;
  if (key == "groupKey") return Field::kGroupKey;
  if (key == "receiver") return Field::kReceiver;
  if (key == "externalURL") return Field::kExternalUrl;
  if (key == "truncatedAlerts") return Field::kTruncatedAlerts;
  return Field::kOther;
}

Field AlertField(std::string_view key) {
  if (key == "labels") return Field::kLabels;
  if (key == "annotations") return Field::kAnnotations;
  if (key == "status") return Field::kStatus;
  if (key == "startsAt") return Field::kStartsAt;
  if (key == "endsAt") return Field::kEndsAt;
  if (key == "fingerprint") return Field::kFingerprint;
  if (key == "generatorURL") return Field::kGeneratorUrl;
  return Field::kOther;
}

// The containers the decoder reads. Any other container is skipped (see skip_depth_).
enum class Scope { kBeforeBody, kBody, kAlerts, kAlert, kLabels, kAnnotations, kAfterBody };

// The JSON types of scalar values that the decoder distinguishes.
enum class ScalarType { kString, kNull, kInteger, kOther };

// Problems in one alert's labels or annotations. An alert with any of them is invalid.
struct StringMapProblems {
  bool not_object = false;
  // Names whose last value is not a string. The first in sorted order is reported, as a lookup
  // in a decoded document would find it.
  std::vector<std::string> non_string_names;
};

// Checks a string map read by the decoder. `field` is "labels" or "annotations".
core::Result<void> CheckStringMap(const StringMapProblems& problems, std::string_view field) {
  if (problems.not_object) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "`{}` is not an object", field);
  }
  if (!problems.non_string_names.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "`{}.{}` is not a string", field,
                           *std::ranges::min_element(problems.non_string_names));
  }
  return {};
}

// A handler for json_reader::ReadJson and Json::sax_parse. Each event moves a small state machine:
// `scope_` is the container being read and `field_` the member whose value comes next.
class WebhookDecoder {
 public:
  explicit WebhookDecoder(std::string_view service_label) : service_label_(service_label) {}

  // The result once ReadJson or sax_parse has returned true.
  core::Result<WebhookPayload> Finish() && {
    if (!body_is_object_) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "the webhook body is not a JSON object; send Alertmanager's webhook "
                             "payload");
    }
    if (version_problem_) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "`version` is {}, expected the string \"4\"", *version_problem_);
    }
    if (payload_.version.empty()) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "`version` is missing or empty, expected the string \"4\" that "
                             "Alertmanager 0.16 and later send");
    }
    if (payload_.version != "4") {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "unsupported webhook payload version '{}': only version 4 "
                             "(Alertmanager 0.16 and later) is read",
                             payload_.version);
    }
    if (truncated_problem_) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "`truncatedAlerts` is {}, expected an integer from 0 to {}",
                             *truncated_problem_, kMaxTruncatedAlerts);
    }
    if (!has_alerts_list_) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "the webhook body has no `alerts` list");
    }
    return std::move(payload_);
  }

  size_t error_byte() const { return error_byte_; }

  // The SAX events of nlohmann::json_sax. Each returns true to continue parsing, because the
  // decoder reports problems only once the whole body has parsed.
  bool null() { return OnScalar(ScalarType::kNull); }
  bool boolean(bool value) {
    RenderBodyScalar(value);
    return OnScalar(ScalarType::kOther);
  }
  bool number_integer(Json::number_integer_t value) {
    RenderBodyScalar(value);
    integer_in_range_ = value >= 0 && value <= kMaxTruncatedAlerts;
    integer_ = value;
    return OnScalar(ScalarType::kInteger);
  }
  bool number_unsigned(Json::number_unsigned_t value) {
    RenderBodyScalar(value);
    integer_in_range_ = value <= static_cast<uint64_t>(kMaxTruncatedAlerts);
    integer_ = integer_in_range_ ? static_cast<int64_t>(value) : 0;
    return OnScalar(ScalarType::kInteger);
  }
  bool number_float(Json::number_float_t value, const Json::string_t& /*text*/) {
    RenderBodyScalar(value);
    return OnScalar(ScalarType::kOther);
  }
  bool string(Json::string_t& value) {
    text_ = &value;
    return OnScalar(ScalarType::kString);
  }
  bool binary(Json::binary_t& /*value*/) { return OnScalar(ScalarType::kOther); }
  bool start_object(size_t /*elements*/) { return OnOpen(/*is_object=*/true); }
  bool start_array(size_t /*elements*/) { return OnOpen(/*is_object=*/false); }
  bool end_object() { return OnClose(); }
  bool end_array() { return OnClose(); }
  bool key(Json::string_t& name);
  // Records where the body stopped being valid JSON. This also covers a number too large for a
  // double, which nlohmann reports as out_of_range rather than parse_error.
  bool parse_error(size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*error*/) {
    error_byte_ = position;
    return false;
  }

 private:
  bool OnScalar(ScalarType type);
  // Keeps the rendering of a number or boolean of the body, which an error message may name.
  template <typename Value>
  void RenderBodyScalar(Value value) {
    if (skip_depth_ == 0 && scope_ == Scope::kBody) rendered_ = RenderValue(Json(value));
  }
  bool OnOpen(bool is_object);
  bool OnClose();

  void ClearBodyField(Field field);
  void SetBodyField(ScalarType type);
  std::string RenderScalar(ScalarType type) const {
    if (type == ScalarType::kString) return RenderValue(Json(*text_));
    if (type == ScalarType::kNull) return "null";
    return rendered_;
  }
  void ClearAlertField(Field field);
  void SetAlertField(ScalarType type);
  void SetMapValue(std::map<std::string, std::string>& values, StringMapProblems& problems,
                   ScalarType type);

  void StartAlert();
  void FinishAlert();
  core::Result<void> CompleteAlert();
  void RejectAlert(std::string reason) {
    payload_.invalid_alerts.push_back(
        InvalidAlert{.index = alert_index_++, .reason = std::move(reason)});
  }

  std::string_view service_label_;
  WebhookPayload payload_;
  bool body_is_object_ = false;
  bool has_alerts_list_ = false;
  size_t alert_index_ = 0;  // the index in `alerts` of the next element
  size_t error_byte_ = 0;

  Scope scope_ = Scope::kBeforeBody;
  Field field_ = Field::kOther;
  // Depth inside a value that is being skipped; 0 when the decoder reads the events.
  size_t skip_depth_ = 0;
  // The scalar of the current event.
  Json::string_t* text_ = nullptr;
  int64_t integer_ = 0;
  bool integer_in_range_ = false;  // integer_ is from 0 to kMaxTruncatedAlerts
  std::string rendered_;           // a number or boolean of the body, for an error message
  // The rendering of a `version` that is not a string, and of an invalid `truncatedAlerts`.
  std::optional<std::string> version_problem_;
  std::optional<std::string> truncated_problem_;

  // The alert being read. Its status and times are checked when its object ends, because a
  // repeated key replaces the value read before.
  Alert alert_;
  std::string alert_status_;
  std::string starts_at_;
  std::string ends_at_;
  StringMapProblems label_problems_;
  StringMapProblems annotation_problems_;
  std::string map_key_;  // the label or annotation name whose value comes next
};

bool WebhookDecoder::key(Json::string_t& name) {
  if (skip_depth_ > 0) return true;
  switch (scope_) {
    case Scope::kBody:
      field_ = BodyField(name);
      ClearBodyField(field_);
      break;
    case Scope::kAlert:
      field_ = AlertField(name);
      ClearAlertField(field_);
      break;
    case Scope::kLabels:
    case Scope::kAnnotations:
      map_key_ = std::move(name);
      break;
    default:
      break;
  }
  return true;
}

bool WebhookDecoder::OnScalar(ScalarType type) {
  if (skip_depth_ > 0) return true;
  switch (scope_) {
    case Scope::kBeforeBody:
      scope_ = Scope::kAfterBody;
      break;
    case Scope::kBody:
      SetBodyField(type);
      break;
    case Scope::kAlerts:
      RejectAlert("the alert is not an object");
      break;
    case Scope::kAlert:
      SetAlertField(type);
      break;
    case Scope::kLabels:
      SetMapValue(alert_.labels, label_problems_, type);
      break;
    case Scope::kAnnotations:
      SetMapValue(alert_.annotations, annotation_problems_, type);
      break;
    case Scope::kAfterBody:
      break;
  }
  return true;
}

bool WebhookDecoder::OnOpen(bool is_object) {
  if (skip_depth_ > 0) {
    ++skip_depth_;
    return true;
  }
  switch (scope_) {
    case Scope::kBeforeBody:
      if (is_object) {
        body_is_object_ = true;
        scope_ = Scope::kBody;
        return true;
      }
      scope_ = Scope::kAfterBody;
      break;
    case Scope::kBody:
      if (field_ == Field::kAlerts && !is_object) {
        has_alerts_list_ = true;
        scope_ = Scope::kAlerts;
        return true;
      }
      if (field_ == Field::kVersion) version_problem_ = is_object ? "an object" : "an array";
      if (field_ == Field::kTruncatedAlerts) {
        truncated_problem_ = is_object ? "an object" : "an array";
      }
      break;
    case Scope::kAlerts:
      if (is_object) {
        StartAlert();
        scope_ = Scope::kAlert;
        return true;
      }
      RejectAlert("the alert is not an object");
      break;
    case Scope::kAlert:
      if (field_ == Field::kLabels) {
        if (is_object) {
          scope_ = Scope::kLabels;
          return true;
        }
        label_problems_.not_object = true;
      } else if (field_ == Field::kAnnotations) {
        if (is_object) {
          scope_ = Scope::kAnnotations;
          return true;
        }
        annotation_problems_.not_object = true;
      }
      // Any other member that is a container reads as absent, like a string member of another
      // type.
      break;
    case Scope::kLabels:
      SetMapValue(alert_.labels, label_problems_, ScalarType::kOther);
      break;
    case Scope::kAnnotations:
      SetMapValue(alert_.annotations, annotation_problems_, ScalarType::kOther);
      break;
    case Scope::kAfterBody:
      break;
  }
  skip_depth_ = 1;
  return true;
}

bool WebhookDecoder::OnClose() {
  if (skip_depth_ > 0) {
    --skip_depth_;
    return true;
  }
  switch (scope_) {
    case Scope::kBody:
      scope_ = Scope::kAfterBody;
      break;
    case Scope::kAlerts:
      scope_ = Scope::kBody;
      break;
    case Scope::kAlert:
      FinishAlert();
      scope_ = Scope::kAlerts;
      break;
    case Scope::kLabels:
    case Scope::kAnnotations:
      scope_ = Scope::kAlert;
      break;
    case Scope::kBeforeBody:
    case Scope::kAfterBody:
      break;
  }
  return true;
}

// Clears a body member when its key appears, so that a repeated key replaces the earlier value
// and a value of the wrong type reads as absent.
void WebhookDecoder::ClearBodyField(Field field) {
  switch (field) {
    case Field::kVersion:
      payload_.version.clear();
      version_problem_.reset();
      break;
    case Field::kGroupKey:
      payload_.group_key.clear();
      break;
    case Field::kReceiver:
      payload_.receiver.clear();
      break;
    case Field::kStatus:
      payload_.status.clear();
      break;
    case Field::kExternalUrl:
      payload_.external_url.clear();
      break;
    case Field::kTruncatedAlerts:
      payload_.truncated_alerts = 0;
      truncated_problem_.reset();
      break;
    case Field::kAlerts:
      payload_.alerts.clear();
      payload_.invalid_alerts.clear();
      has_alerts_list_ = false;
      alert_index_ = 0;
      break;
    default:
      break;
  }
}

void WebhookDecoder::SetBodyField(ScalarType type) {
  if (field_ == Field::kTruncatedAlerts) {
    if (type == ScalarType::kInteger && integer_in_range_) {
      payload_.truncated_alerts = integer_;
    } else {
      truncated_problem_ = RenderScalar(type);
    }
    return;
  }
  if (type != ScalarType::kString) {
    if (field_ == Field::kVersion) version_problem_ = RenderScalar(type);
    return;
  }
  switch (field_) {
    case Field::kVersion:
      payload_.version = std::move(*text_);
      break;
    case Field::kGroupKey:
      payload_.group_key = std::move(*text_);
      break;
    case Field::kReceiver:
      payload_.receiver = std::move(*text_);
      break;
    case Field::kStatus:
      payload_.status = std::move(*text_);
      break;
    case Field::kExternalUrl:
      payload_.external_url = std::move(*text_);
      break;
    default:
      break;
  }
}

// Clears an alert member when its key appears, as ClearBodyField does for the body.
void WebhookDecoder::ClearAlertField(Field field) {
  switch (field) {
    case Field::kStatus:
      alert_status_.clear();
      break;
    case Field::kLabels:
      alert_.labels.clear();
      label_problems_ = {};
      break;
    case Field::kAnnotations:
      alert_.annotations.clear();
      annotation_problems_ = {};
      break;
    case Field::kStartsAt:
      starts_at_.clear();
      break;
    case Field::kEndsAt:
      ends_at_.clear();
      break;
    case Field::kGeneratorUrl:
      alert_.generator_url.clear();
      break;
    case Field::kFingerprint:
      alert_.fingerprint.clear();
      break;
    default:
      break;
  }
}

void WebhookDecoder::SetAlertField(ScalarType type) {
  if (field_ == Field::kLabels || field_ == Field::kAnnotations) {
    // null means an empty map; any other scalar is not an object.
    if (type == ScalarType::kNull) return;
    (field_ == Field::kLabels ? label_problems_ : annotation_problems_).not_object = true;
    return;
  }
  if (type != ScalarType::kString) return;
  switch (field_) {
    case Field::kStatus:
      alert_status_ = std::move(*text_);
      break;
    case Field::kStartsAt:
      starts_at_ = std::move(*text_);
      break;
    case Field::kEndsAt:
      ends_at_ = std::move(*text_);
      break;
    case Field::kGeneratorUrl:
      alert_.generator_url = std::move(*text_);
      break;
    case Field::kFingerprint:
      alert_.fingerprint = std::move(*text_);
      break;
    default:
      break;
  }
}

void WebhookDecoder::SetMapValue(std::map<std::string, std::string>& values,
                                 StringMapProblems& problems, ScalarType type) {
  auto& names = problems.non_string_names;
  auto listed = std::ranges::find(names, map_key_);
  if (type == ScalarType::kString) {
    if (listed != names.end()) names.erase(listed);
    values.insert_or_assign(std::move(map_key_), std::move(*text_));
    return;
  }
  values.erase(map_key_);
  if (listed == names.end()) names.push_back(std::move(map_key_));
}

void WebhookDecoder::StartAlert() {
  alert_ = Alert{};
  alert_status_.clear();
  starts_at_.clear();
  ends_at_.clear();
  label_problems_ = {};
  annotation_problems_ = {};
}

void WebhookDecoder::FinishAlert() {
  const size_t index = alert_index_++;
  auto completed = CompleteAlert();
  if (completed) {
    payload_.alerts.push_back(std::move(alert_));
  } else {
    payload_.invalid_alerts.push_back(
        InvalidAlert{.index = index, .reason = std::move(completed.error().message)});
  }
}

// Checks the alert just read and fills its derived members. The checks run in a fixed order
// (status, labels, annotations, startsAt, endsAt), so an alert with several problems always
// reports the first of them.
core::Result<void> WebhookDecoder::CompleteAlert() {
  if (alert_status_ == "firing") {
    alert_.status = AlertStatus::kFiring;
  } else if (alert_status_ == "resolved") {
    alert_.status = AlertStatus::kResolved;
  } else {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "`status` is '{}', expected firing or resolved", alert_status_);
  }
  if (auto labels = CheckStringMap(label_problems_, "labels"); !labels) return labels;
  if (auto annotations = CheckStringMap(annotation_problems_, "annotations"); !annotations) {
    return annotations;
  }

  auto starts_at = core::ParseTime(starts_at_);
  if (!starts_at) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "`startsAt`: {}",
                           starts_at.error().message);
  }
  alert_.starts_at = *starts_at;
  if (!ends_at_.empty() && !ends_at_.starts_with(kZeroTimePrefix)) {
    auto ends_at = core::ParseTime(ends_at_);
    if (!ends_at) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "`endsAt`: {}",
                             ends_at.error().message);
    }
    alert_.ends_at = *ends_at;
  }

  if (alert_.fingerprint.empty()) {
    alert_.fingerprint = LabelFingerprint(alert_.labels);
    alert_.fingerprint_computed = true;
  }
  if (auto service = alert_.labels.find(std::string(service_label_));
      service != alert_.labels.end()) {
    alert_.service = service->second;
  }
  return {};
}

}  // namespace

core::Result<WebhookPayload> ParseAlertmanagerWebhook(std::string_view body,
                                                      std::string_view service_label) {
  WebhookDecoder decoder(service_label);
  if (json_reader::ReadJson(body, decoder)) return std::move(decoder).Finish();

  // The fast reader gave up, on a form it does not read or on invalid JSON. nlohmann's parser
  // decides which, with a new decoder because the first one contains a partial result.
  WebhookDecoder checked_decoder(service_label);
  if (!Json::sax_parse(body.begin(), body.end(), &checked_decoder)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the webhook body is not valid JSON (byte {}); send Alertmanager's "
                           "webhook payload",
                           checked_decoder.error_byte());
  }
  return std::move(checked_decoder).Finish();
}

}  // namespace backout::signals
