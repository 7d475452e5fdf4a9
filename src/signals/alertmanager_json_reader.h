#pragma once

// A JSON reader for the webhook's fast path. It sends the same SAX events as
// nlohmann::json::sax_parse in strict mode (nlohmann 3.11) in about a fifth of the instructions
// on the intake benchmark's bodies (callgrind), because nlohmann's lexer copies every byte into
// two buffers.
//
// It reads only the common forms and gives up on everything else: integers beyond 18 digits,
// fractions and exponents, a byte order mark, and any JSON that is not valid. A caller that gets
// false must parse the body again with nlohmann, which accepts or rejects it and names the byte
// of the error. The events sent before giving up are partial, so that parse needs a new handler.
// Whatever this reader accepts, nlohmann accepts with the same events. The tests compare the two
// on valid and invalid bodies.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace backout::signals::json_reader {

// The classes of bytes in a JSON string.
enum class ByteClass : uint8_t { kPlain, kQuote, kBackslash, kControl, kNonAscii };

constexpr std::array<ByteClass, 256> MakeByteClasses() {
  std::array<ByteClass, 256> classes{};
  for (int byte = 0; byte < 256; ++byte) {
    if (byte < 0x20) {
      classes[byte] = ByteClass::kControl;
    } else if (byte == '"') {
      classes[byte] = ByteClass::kQuote;
    } else if (byte == '\\') {
      classes[byte] = ByteClass::kBackslash;
    } else if (byte >= 0x80) {
      classes[byte] = ByteClass::kNonAscii;
    } else {
      classes[byte] = ByteClass::kPlain;
    }
  }
  return classes;
}

inline constexpr std::array<ByteClass, 256> kByteClasses = MakeByteClasses();

// A cursor over the body with the scanning steps the reader needs. Every step returns false when
// the text is not in a form the reader accepts.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : next_(text.data()), end_(text.data() + text.size()) {}

  bool AtEnd() const { return next_ == end_; }

  // Skips whitespace and returns the next byte without consuming it, or -1 at the end.
  int Peek() {
    while (next_ != end_ && (*next_ == ' ' || *next_ == '\n' || *next_ == '\r' || *next_ == '\t')) {
      ++next_;
    }
    return next_ == end_ ? -1 : static_cast<unsigned char>(*next_);
  }

  void Skip() { ++next_; }

  // Consumes `word` (true, false or null) after its first byte has been peeked.
  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - next_) < word.size()) return false;
    if (std::string_view(next_, word.size()) != word) return false;
    next_ += word.size();
    return true;
  }

  // Reads a string whose opening quote has been peeked, decoding escapes into `out`.
  bool String(std::string& out) {
    out.clear();
    ++next_;  // the opening quote
    while (true) {
      const char* run = next_;
      while (next_ != end_ &&
             kByteClasses[static_cast<unsigned char>(*next_)] == ByteClass::kPlain) {
        ++next_;
      }
      out.append(run, next_);
      if (next_ == end_) return false;
      switch (kByteClasses[static_cast<unsigned char>(*next_)]) {
        case ByteClass::kQuote:
          ++next_;
          return true;
        case ByteClass::kBackslash:
          if (!Escape(out)) return false;
          break;
        case ByteClass::kNonAscii:
          if (!Utf8Sequence(out)) return false;
          break;
        default:  // a control byte, which JSON requires to be escaped
          return false;
      }
    }
  }

  // Reads an integer of at most 18 digits, which fits int64_t, with nlohmann's event types: an
  // unsigned value unless the text starts with a minus sign.
  template <typename Handler>
  bool Number(Handler& handler) {
    const bool negative = *next_ == '-';
    if (negative) ++next_;
    const char* digits = next_;
    uint64_t value = 0;
    while (next_ != end_ && *next_ >= '0' && *next_ <= '9') {
      value = value * 10 + static_cast<uint64_t>(*next_ - '0');
      ++next_;
    }
    const ptrdiff_t count = next_ - digits;
    if (count == 0 || count > 18) return false;
    if (*digits == '0' && count > 1) return false;  // a leading zero is invalid JSON
    if (next_ != end_ && (*next_ == '.' || *next_ == 'e' || *next_ == 'E')) return false;
    if (negative) return handler.number_integer(-static_cast<int64_t>(value));
    return handler.number_unsigned(value);
  }

 private:
  static int HexValue(char digit) {
    if (digit >= '0' && digit <= '9') return digit - '0';
    if (digit >= 'a' && digit <= 'f') return digit - 'a' + 10;
    if (digit >= 'A' && digit <= 'F') return digit - 'A' + 10;
    return -1;
  }

  // Reads the four hex digits after "\u".
  bool CodeUnit(uint32_t& unit) {
    if (end_ - next_ < 4) return false;
    unit = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = HexValue(next_[i]);
      if (digit < 0) return false;
      unit = unit * 16 + static_cast<uint32_t>(digit);
    }
    next_ += 4;
    return true;
  }

  bool Escape(std::string& out) {
    ++next_;  // the backslash
    if (next_ == end_) return false;
    const char kind = *next_++;
    switch (kind) {
      case '"':
      case '\\':
      case '/':
        out.push_back(kind);
        return true;
      case 'b':
        out.push_back('\b');
        return true;
      case 'f':
        out.push_back('\f');
        return true;
      case 'n':
        out.push_back('\n');
        return true;
      case 'r':
        out.push_back('\r');
        return true;
      case 't':
        out.push_back('\t');
        return true;
      case 'u':
        return UnicodeEscape(out);
      default:
        return false;
    }
  }

  // Decodes \uXXXX, or a surrogate pair \uD8XX\uDCXX, into UTF-8. A lone surrogate is invalid.
  bool UnicodeEscape(std::string& out) {
    uint32_t code_point = 0;
    if (!CodeUnit(code_point)) return false;
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) return false;
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      uint32_t low = 0;
      if (end_ - next_ < 2 || next_[0] != '\\' || next_[1] != 'u') return false;
      next_ += 2;
      if (!CodeUnit(low) || low < 0xDC00 || low > 0xDFFF) return false;
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    }
    if (code_point < 0x80) {
      out.push_back(static_cast<char>(code_point));
    } else if (code_point < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
      out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else if (code_point < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    }
    return true;
  }

  // Copies one well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing
  // above U+10FFFF), the same ranges nlohmann's lexer accepts.
  bool Utf8Sequence(std::string& out) {
    const auto byte = [this](ptrdiff_t i) { return static_cast<unsigned char>(next_[i]); };
    const auto in = [](unsigned char value, unsigned char low, unsigned char high) {
      return value >= low && value <= high;
    };
    const unsigned char lead = byte(0);
    const ptrdiff_t left = end_ - next_;
    ptrdiff_t length = 0;
    if (in(lead, 0xC2, 0xDF)) {
      length = left >= 2 && in(byte(1), 0x80, 0xBF) ? 2 : 0;
    } else if (in(lead, 0xE0, 0xEF)) {
      const unsigned char low = lead == 0xE0 ? 0xA0 : 0x80;
      const unsigned char high = lead == 0xED ? 0x9F : 0xBF;
      length = left >= 3 && in(byte(1), low, high) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
    } else if (in(lead, 0xF0, 0xF4)) {
      const unsigned char low = lead == 0xF0 ? 0x90 : 0x80;
      const unsigned char high = lead == 0xF4 ? 0x8F : 0xBF;
      length =
          left >= 4 && in(byte(1), low, high) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF)
              ? 4
              : 0;
    }
    if (length == 0) return false;
    out.append(next_, static_cast<size_t>(length));
    next_ += length;
    return true;
  }

  const char* next_;
  const char* end_;
};

// Sends the SAX events of `text` to `handler`, which has nlohmann::json_sax's member functions
// for the events it is sent: null, boolean, number_integer, number_unsigned, string, key,
// start_object, end_object, start_array and end_array. Returns false when the reader gave up or
// the handler returned false.
template <typename Handler>
bool ReadJson(std::string_view text, Handler& handler) {
  // nlohmann passes -1 as the element count of every container it parses from text.
  constexpr size_t kUnknownSize = static_cast<size_t>(-1);
  Scanner scanner(text);
  std::string buffer;
  // The open containers, innermost last: true for an object, false for an array.
  std::vector<bool> open;

  // Each turn reads one value. After a container opens, the turn reads its first member.
  while (true) {
    int next = scanner.Peek();
    const bool in_object = !open.empty() && open.back();
    if (in_object) {  // a member's key and colon come before its value
      if (next != '"' || !scanner.String(buffer) || !handler.key(buffer)) return false;
      if (scanner.Peek() != ':') return false;
      scanner.Skip();
      next = scanner.Peek();
    }

    bool value_read = true;
    switch (next) {
      case '{':
        scanner.Skip();
        if (!handler.start_object(kUnknownSize)) return false;
        if (scanner.Peek() == '}') {
          scanner.Skip();
          if (!handler.end_object()) return false;
        } else {
          open.push_back(true);
          value_read = false;
        }
        break;
      case '[':
        scanner.Skip();
        if (!handler.start_array(kUnknownSize)) return false;
        if (scanner.Peek() == ']') {
          scanner.Skip();
          if (!handler.end_array()) return false;
        } else {
          open.push_back(false);
          value_read = false;
        }
        break;
      case '"':
        if (!scanner.String(buffer) || !handler.string(buffer)) return false;
        break;
      case 't':
        if (!scanner.Literal("true") || !handler.boolean(true)) return false;
        break;
      case 'f':
        if (!scanner.Literal("false") || !handler.boolean(false)) return false;
        break;
      case 'n':
        if (!scanner.Literal("null") || !handler.null()) return false;
        break;
      case '-':
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7':
      case '8':
      case '9':
        if (!scanner.Number(handler)) return false;
        break;
      default:
        return false;
    }
    if (!value_read) continue;

    // After a value: a comma for the next member, or the ends of the containers it closes.
    while (true) {
      if (open.empty()) return scanner.Peek() == -1;
      const int separator = scanner.Peek();
      if (separator == ',') {
        scanner.Skip();
        break;
      }
      if (separator != (open.back() ? '}' : ']')) return false;
      scanner.Skip();
      const bool closes_object = open.back();
      open.pop_back();
      if (!(closes_object ? handler.end_object() : handler.end_array())) return false;
    }
  }
}

}  // namespace backout::signals::json_reader
