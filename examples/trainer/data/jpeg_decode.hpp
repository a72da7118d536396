// JPEG through TurboJPEG (Debian's libturbojpeg0-dev, libjpeg-turbo 2.1: the tj*3 API): the header
// first (size and colour space), then a decode into a buffer the caller sized and allocated after
// checking the header against its limits. Used by image_decode.hpp; no LibTorch.
#pragma once

#include <turbojpeg.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace trainer::detail {

/// Owns a TurboJPEG decompressor (TurboJPEG handles its own errors: no longjmp reaches us).
class TurboJpegDecoder {
 public:
  TurboJpegDecoder() : handle_(tjInitDecompress()) {}
  ~TurboJpegDecoder() {
    if (handle_ != nullptr) tjDestroy(handle_);
  }
  TurboJpegDecoder(const TurboJpegDecoder&) = delete;
  TurboJpegDecoder& operator=(const TurboJpegDecoder&) = delete;
  bool ok() const { return handle_ != nullptr; }
  /// libjpeg-turbo's reason for the last failure.
  std::string error() const {
    const char* reason = tjGetErrorStr2(handle_);
    return reason != nullptr && reason[0] != '\0' ? reason : "unknown libjpeg-turbo error";
  }

  struct Header {
    int width = 0;
    int height = 0;
    int colorspace = -1;   // TJCS_*
    int subsampling = -1;  // TJSAMP_*
  };
  /// The frame header (SOF) and the colour space; nothing of the image is allocated.
  bool header(const uint8_t* data, size_t size, Header& h) {
    return tjDecompressHeader3(handle_, data, static_cast<unsigned long>(size), &h.width, &h.height, &h.subsampling,
                               &h.colorspace) == 0;
  }
  /// Decodes to `pixel_format` (TJPF_RGB or TJPF_GRAY) into `out`, which holds width * height *
  /// its channels bytes. Any warning stops the decode (TJFLAG_STOPONWARNING): a truncated file or
  /// corrupt entropy-coded data is refused instead of decoded with gray or garbled blocks; progressive
  /// files with more scans than libjpeg-turbo's limit are refused (TJFLAG_LIMITSCANS: hundreds of
  /// scans of a few bytes each can take minutes to decode).
  bool decode(const uint8_t* data, size_t size, const Header& h, int pixel_format, uint8_t* out) {
    return tjDecompress2(handle_, data, static_cast<unsigned long>(size), out, h.width, 0, h.height, pixel_format,
                         TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) == 0;
  }

 private:
  tjhandle handle_;
};

}  // namespace trainer::detail
