{
  "targets": [
    {
      "target_name": "ferry_shims",
      "sources": ["src/shims.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
