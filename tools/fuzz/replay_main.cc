// main() of every fuzz driver in the default (gcc) build: replays the files named on the
// command line through LLVMFuzzerTestOneInput (the regression corpus). With --config=fuzz
// (SLUICE_LIBFUZZER) libFuzzer provides main() and this file is empty.
#ifndef SLUICE_LIBFUZZER
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string s = ss.str();
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("replayed %d input(s)\n", argc - 1);
  return 0;
}
#endif
