/**
 * @file kstreams.h
 * @brief The umbrella header: everything a kstreams application uses.
 */
#ifndef KSTREAMS_KSTREAMS_H
#define KSTREAMS_KSTREAMS_H

#include "common.h"
#include "conf.h"
#include "error.h"
#include "json.h"
#include "partitioner.h"
#include "postgres.h"
#include "processor.h"
#include "serde.h"
#include "serde_typed.h"
#include "streams.h"
#include "table.h"
#include "timestamp.h"
#include "topology.h"

#endif
