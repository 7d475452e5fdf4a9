// SVG to PNG with librsvg. The only file of the module that includes librsvg or cairo.
//
// librsvg brings cairo, pango, glib and fontconfig, about fifty shared libraries, which every
// process linked with it would map at start. The server draws a chart only when it exports
// evidence, so librsvg is loaded with dlopen on the first call instead. The headers give the
// types and the signatures, and dlsym gives the functions.
#include "evidence/png.h"

#include <cairo.h>
#include <dlfcn.h>
#include <librsvg/rsvg.h>

#include <cmath>
#include <memory>
#include <mutex>

namespace backout::evidence {
namespace {

// Charts are a few hundred pixels wide. Anything far larger is not a chart of ours and would take
// a lot of memory to draw.
constexpr double kMaxSide = 8192;

// The shared object named by librsvg's package (librsvg2-2); cairo and glib are its dependencies,
// so dlsym through its handle finds their functions too.
constexpr const char* kLibrary = "librsvg-2.so.2";

// Every library function this file calls, resolved once.
struct Library {
  decltype(&rsvg_handle_new_from_data) new_from_data = nullptr;
  decltype(&rsvg_handle_set_dpi) set_dpi = nullptr;
  decltype(&rsvg_handle_get_intrinsic_size_in_pixels) intrinsic_size = nullptr;
  decltype(&rsvg_handle_render_document) render_document = nullptr;
  decltype(&g_object_unref) object_unref = nullptr;
  decltype(&g_error_free) error_free = nullptr;
  decltype(&cairo_image_surface_create) surface_create = nullptr;
  decltype(&cairo_surface_status) surface_status = nullptr;
  decltype(&cairo_surface_flush) surface_flush = nullptr;
  decltype(&cairo_surface_write_to_png_stream) write_png = nullptr;
  decltype(&cairo_surface_destroy) surface_destroy = nullptr;
  decltype(&cairo_create) create = nullptr;
  decltype(&cairo_status) status = nullptr;
  decltype(&cairo_status_to_string) status_to_string = nullptr;
  decltype(&cairo_set_source_rgb) set_source_rgb = nullptr;
  decltype(&cairo_paint) paint = nullptr;
  decltype(&cairo_destroy) destroy = nullptr;
};

template <typename Function>
bool Resolve(void* handle, const char* name, Function& function, std::string& missing) {
  function = reinterpret_cast<Function>(dlsym(handle, name));
  if (function == nullptr && missing.empty()) missing = name;
  return function != nullptr;
}

// Loads librsvg on the first call; later calls return the same result. The library stays loaded
// for the life of the process.
const core::Result<Library>& LoadLibrary() {
  static const core::Result<Library> loaded = []() -> core::Result<Library> {
    void* handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* reason = dlerror();
      return core::MakeError(core::ErrorCode::kUnavailable,
                             "cannot load {} to draw PNG charts ({}); install Debian's librsvg2-2 "
                             "package (scripts/install-deps.sh does)",
                             kLibrary, reason != nullptr ? reason : "no reason given");
    }
    Library library;
    std::string missing;
    Resolve(handle, "rsvg_handle_new_from_data", library.new_from_data, missing);
    Resolve(handle, "rsvg_handle_set_dpi", library.set_dpi, missing);
    Resolve(handle, "rsvg_handle_get_intrinsic_size_in_pixels", library.intrinsic_size, missing);
    Resolve(handle, "rsvg_handle_render_document", library.render_document, missing);
    Resolve(handle, "g_object_unref", library.object_unref, missing);
    Resolve(handle, "g_error_free", library.error_free, missing);
    Resolve(handle, "cairo_image_surface_create", library.surface_create, missing);
    Resolve(handle, "cairo_surface_status", library.surface_status, missing);
    Resolve(handle, "cairo_surface_flush", library.surface_flush, missing);
    Resolve(handle, "cairo_surface_write_to_png_stream", library.write_png, missing);
    Resolve(handle, "cairo_surface_destroy", library.surface_destroy, missing);
    Resolve(handle, "cairo_create", library.create, missing);
    Resolve(handle, "cairo_status", library.status, missing);
    Resolve(handle, "cairo_status_to_string", library.status_to_string, missing);
    Resolve(handle, "cairo_set_source_rgb", library.set_source_rgb, missing);
    Resolve(handle, "cairo_paint", library.paint, missing);
    Resolve(handle, "cairo_destroy", library.destroy, missing);
    if (!missing.empty()) {
      return core::MakeError(core::ErrorCode::kUnavailable,
                             "{} has no function {}; it is older than the librsvg 2.52 that PNG "
                             "charts need, so upgrade the librsvg2-2 package",
                             kLibrary, missing);
    }
    return library;
  }();
  return loaded;
}

cairo_status_t AppendToString(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

std::string TakeMessage(const Library& library, GError* error) {
  std::string message =
      error != nullptr && error->message != nullptr ? error->message : "unknown librsvg error";
  if (error != nullptr) library.error_free(error);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

}  // namespace

core::Result<std::string> RenderPng(std::string_view svg) {
  // NOTE: librsvg lays out text with pango and fontconfig, whose caches the whole process shares.
  // Rendering one chart at a time keeps older library versions safe, and a chart takes
  // milliseconds, so the lock costs little.
  static std::mutex render_mutex;
  std::lock_guard lock(render_mutex);

  const core::Result<Library>& loaded = LoadLibrary();
  if (!loaded) return std::unexpected(loaded.error());
  const Library& library = *loaded;
  auto unref_handle = [&library](RsvgHandle* handle) { library.object_unref(handle); };
  auto destroy_surface = [&library](cairo_surface_t* surface) { library.surface_destroy(surface); };
  auto destroy_context = [&library](cairo_t* context) { library.destroy(context); };

  GError* error = nullptr;
  std::unique_ptr<RsvgHandle, decltype(unref_handle)> handle(
      library.new_from_data(reinterpret_cast<const guint8*>(svg.data()),
                            static_cast<gsize>(svg.size()), &error),
      unref_handle);
  if (!handle) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "the SVG cannot be parsed: {}",
                           TakeMessage(library, error));
  }
  library.set_dpi(handle.get(), 96.0);

  gdouble width = 0;
  gdouble height = 0;
  if (!library.intrinsic_size(handle.get(), &width, &height) || width < 1 || height < 1 ||
      width > kMaxSide || height > kMaxSide) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the SVG has no width and height in absolute units between 1 and {} "
                           "pixels, so its PNG size is unknown; give the <svg> element width and "
                           "height attributes",
                           kMaxSide);
  }
  const int pixel_width = static_cast<int>(std::ceil(width));
  const int pixel_height = static_cast<int>(std::ceil(height));

  std::unique_ptr<cairo_surface_t, decltype(destroy_surface)> surface(
      library.surface_create(CAIRO_FORMAT_ARGB32, pixel_width, pixel_height), destroy_surface);
  if (library.surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return core::MakeError(core::ErrorCode::kInternal, "cairo cannot create a {}x{} image: {}",
                           pixel_width, pixel_height,
                           library.status_to_string(library.surface_status(surface.get())));
  }
  std::unique_ptr<cairo_t, decltype(destroy_context)> context(library.create(surface.get()),
                                                              destroy_context);

  // A white background, because the charts leave it transparent and most image viewers would
  // show black behind the black axis text.
  library.set_source_rgb(context.get(), 1, 1, 1);
  library.paint(context.get());

  const RsvgRectangle viewport{.x = 0, .y = 0, .width = width, .height = height};
  if (!library.render_document(handle.get(), context.get(), &viewport, &error)) {
    return core::MakeError(core::ErrorCode::kInternal, "librsvg cannot draw the SVG: {}",
                           TakeMessage(library, error));
  }
  if (library.status(context.get()) != CAIRO_STATUS_SUCCESS) {
    return core::MakeError(core::ErrorCode::kInternal, "cairo failed while drawing the SVG: {}",
                           library.status_to_string(library.status(context.get())));
  }
  library.surface_flush(surface.get());

  std::string png;
  const cairo_status_t written = library.write_png(surface.get(), AppendToString, &png);
  if (written != CAIRO_STATUS_SUCCESS) {
    return core::MakeError(core::ErrorCode::kInternal, "cairo cannot encode the PNG: {}",
                           library.status_to_string(written));
  }
  return png;
}

}  // namespace backout::evidence
