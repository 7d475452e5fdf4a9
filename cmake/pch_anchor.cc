// The one source of the targets that build the shared precompiled headers
// (cmake/BackoutModule.cmake). It is empty: a target needs a source to compile its header.
