# The fuzz targets, one per decoder of untrusted bytes (README.md, "Reliability").
# ks_fuzz_targets(SUFFIX MAIN_SOURCE): one executable per fuzz_*.c named
# <target><SUFFIX>, linked with MAIN_SOURCE (empty: libFuzzer's main).
set(KS_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
# (one line: tests/fuzz/fuzz.sh reads it)
set(KS_FUZZ_TARGETS json_fast user_event json_serde replay windowed_key changelog_restore conf)

function(ks_fuzz_targets suffix main_src)
        foreach(t ${KS_FUZZ_TARGETS})
                set(exe fuzz_${t}${suffix})
                set(srcs ${KS_FUZZ_DIR}/fuzz_${t}.c ${main_src})
                if(t STREQUAL "user_event")
                        # The validator is part of kstreams-app, not a library.
                        list(APPEND srcs ${CMAKE_SOURCE_DIR}/apps/app/valid_event.c)
                endif()
                add_executable(${exe} ${srcs})
                target_include_directories(${exe} PRIVATE
                        ${CMAKE_SOURCE_DIR}/testkit/src)
                target_link_libraries(${exe} PRIVATE kstreams-testkit_static
                        kstreams_internal ks_apps_common)
        endforeach()
endfunction()
