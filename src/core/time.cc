#include "core/time.h"

#include <cctype>
#include <charconv>

namespace backout::core {
namespace {

bool ParseDigits(std::string_view text, size_t pos, size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

std::unexpected<Error> InvalidTime(std::string_view text) {
  return MakeError(ErrorCode::kInvalidArgument,
                   "invalid time '{}': expected RFC 3339 such as 2026-12-04T17:05:41Z", text);
}

}  // namespace

std::string FormatTime(Time time) {
  using namespace std::chrono;
  const auto day = floor<days>(time);
  const year_month_day date{day};
  const auto since_midnight = time - day;
  const auto hour = duration_cast<hours>(since_midnight);
  const auto minute = duration_cast<minutes>(since_midnight - hour);
  const auto second = duration_cast<seconds>(since_midnight - hour - minute);
  const auto micros = (since_midnight - hour - minute - second).count();
  const int year = static_cast<int>(date.year());
  if (year < 0 || year > 9999) {
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", year,
                       static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                       hour.count(), minute.count(), second.count(), micros);
  }
  // Digits are written in place because fmt::format parses its format string on every call, and
  // the alert intake formats several times per alert. Every field here is non-negative.
  std::string text = "0000-00-00T00:00:00.000000Z";
  auto put_digits = [&text](size_t position, size_t width, int64_t value) {
    for (size_t i = width; i > 0; --i) {
      text[position + i - 1] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  put_digits(0, 4, year);
  put_digits(5, 2, static_cast<unsigned>(date.month()));
  put_digits(8, 2, static_cast<unsigned>(date.day()));
  put_digits(11, 2, hour.count());
  put_digits(14, 2, minute.count());
  put_digits(17, 2, second.count());
  put_digits(20, 6, micros);
  return text;
}

Result<Time> ParseTime(std::string_view text) {
  using namespace std::chrono;
  int year, month, day, hour, minute, second;
  if (text.size() < 20 || !ParseDigits(text, 0, 4, year) || text[4] != '-' ||
      !ParseDigits(text, 5, 2, month) || text[7] != '-' || !ParseDigits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't') || !ParseDigits(text, 11, 2, hour) || text[13] != ':' ||
      !ParseDigits(text, 14, 2, minute) || text[16] != ':' || !ParseDigits(text, 17, 2, second)) {
    return InvalidTime(text);
  }
  const year_month_day date{std::chrono::year{year}, std::chrono::month{unsigned(month)},
                            std::chrono::day{unsigned(day)}};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return InvalidTime(text);

  size_t pos = 19;
  int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 6) micros = micros * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0 || digits > 9) return InvalidTime(text);
    for (size_t i = digits; i < 6; ++i) micros *= 10;
  }

  int offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int offset_hour, offset_minute;
    if (!ParseDigits(text, pos + 1, 2, offset_hour) || pos + 3 >= text.size() ||
        text[pos + 3] != ':' || !ParseDigits(text, pos + 4, 2, offset_minute)) {
      return InvalidTime(text);
    }
    offset_minutes = (offset_hour * 60 + offset_minute) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return InvalidTime(text);
  }
  if (pos != text.size()) return InvalidTime(text);

  const Time result = sys_days{date} + hours{hour} + minutes{minute} + seconds{second} +
                      microseconds{micros} - minutes{offset_minutes};
  return result;
}

Result<Duration> ParseDuration(std::string_view text) {
  using namespace std::chrono;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, text.data() + text.size() - end);
  if (ec != std::errc() || value < 0 || unit.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid duration '{}': expected a whole number and a unit (ms, s, m, h), "
                     "such as 300s",
                     text);
  }
  if (unit == "ms") return duration_cast<Duration>(milliseconds{value});
  if (unit == "s") return duration_cast<Duration>(seconds{value});
  if (unit == "m") return duration_cast<Duration>(minutes{value});
  if (unit == "h") return duration_cast<Duration>(hours{value});
  return MakeError(ErrorCode::kInvalidArgument,
                   "invalid duration '{}': unknown unit '{}', use ms, s, m or h", text, unit);
}

}  // namespace backout::core
