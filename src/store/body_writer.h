#pragma once

// Writes a stored object body's JSON text directly, for callers that would otherwise build an
// nlohmann value only to serialize it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "store/store.h"

namespace backout::store {

// Writes JSON text byte for byte as SerializeBody would write the same value: nlohmann's dump()
// without indentation, so object members must come in ascending byte order of their names, the
// order of nlohmann's object_t. The writer checks that order and the nesting, and Finish reports
// the first mistake, so a misused writer never yields text that Put would not write.
//
//   BodyWriter writer("body of signal/am:1");
//   writer.BeginObject();
//   writer.Key("id");
//   writer.String("am:1");
//   writer.EndObject();
//   auto body = std::move(writer).Finish();
class BodyWriter {
 public:
  // `what` names the body in errors, such as "body of signal/am:1".
  explicit BodyWriter(std::string what);

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  // A member name of printable ASCII without '"' or '\\', which dump() writes unescaped. It can
  // only be made from a constant expression, such as a string literal, so the compiler rejects
  // any other name.
  class PlainName {
   public:
    // Implicit, so that PlainKey("id") reads like Key("id").
    consteval PlainName(const char* name) : name_(name) {
      for (const char byte : name_) {
        // A throw in a consteval function stops the compilation at the offending name.
        if (byte < 0x20 || byte > 0x7e || byte == '"' || byte == '\\') {
          throw "this member name needs escaping: write it with Key";
        }
      }
    }
    std::string_view view() const { return name_; }

   private:
    std::string_view name_;
  };

  // Starts the next member of the innermost object. Its value comes from the next call.
  void Key(std::string_view name);
  // Key for a name fixed when the program is compiled, copied without scanning it for escapes.
  void PlainKey(PlainName name);

  void String(std::string_view value);
  void Integer(int64_t value);
  void Number(double value);
  void Bool(bool value);
  void Null();
  // Writes an object of string members. A std::map already iterates in dump()'s order.
  void StringMap(const std::map<std::string, std::string>& members);

  // Returns the text of one complete value. Fails (kInvalidArgument) naming `what` when a string
  // is not valid UTF-8, with the message SerializeBody gives, and (kInternal) when the calls did
  // not form one value with its object members in order.
  core::Result<SerializedBody> Finish() &&;

 private:
  struct Level {
    bool object = false;
    bool empty = true;            // no member or item written yet
    bool awaiting_value = false;  // an object's Key was written, its value not yet
    std::string last_name;        // the object's previous member name, when written by Key
    std::string_view plain_name;  // the object's previous member name, when written by PlainKey
  };

  // Checks that a member called `name` may come next, and writes the separator before it.
  bool BeginKey(std::string_view name);

  // Writes the separator a value needs at this position, or records why no value fits here.
  bool BeginValue();
  // Marks the top-level value complete once nothing is open.
  void EndValue();
  void Open(bool object);
  void Close(bool object);
  void WriteString(std::string_view text);
  // Keeps the first error; later calls write nothing.
  void Fail(core::ErrorCode code, std::string message);

  std::string what_;
  std::string text_;
  std::vector<Level> levels_;
  size_t depth_ = 0;  // open levels; levels_ keeps closed ones to reuse their buffers
  bool complete_ = false;
  std::optional<core::Error> error_;
};

}  // namespace backout::store
