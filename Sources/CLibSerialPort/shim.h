#ifndef COURIER_CLIBSERIALPORT_SHIM_H
#define COURIER_CLIBSERIALPORT_SHIM_H
#include <libserialport.h>
#endif
