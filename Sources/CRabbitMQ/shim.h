#include <dlfcn.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>

/* librabbitmq is loaded when a RabbitMQ queue is made, not linked: it brings OpenSSL's libcrypto
   and libssl, about 1.7 MB resident in every collector that never speaks AMQP. Swift calls the
   library through this table, so a direct call cannot link (the executable has no -lrabbitmq). */
#define BREAKWATER_AMQP_FUNCTIONS(X) \
    X(amqp_new_connection) X(amqp_destroy_connection) X(amqp_connection_close) \
    X(amqp_channel_open) X(amqp_channel_close) X(amqp_confirm_select) X(amqp_queue_declare) \
    X(amqp_basic_publish) X(amqp_get_rpc_reply) X(amqp_maybe_release_buffers) X(amqp_cstring_bytes) \
    X(amqp_error_string2) X(amqp_tcp_socket_new) X(amqp_ssl_socket_new) \
    X(amqp_ssl_socket_set_verify_peer) X(amqp_ssl_socket_set_verify_hostname) \
    X(amqp_ssl_socket_set_cacert) X(amqp_socket_open_noblock) X(amqp_simple_wait_frame_noblock) \
    X(amqp_set_rpc_timeout) X(amqp_set_handshake_timeout)

typedef struct {
#define BREAKWATER_AMQP_FIELD(name) __typeof__(&name) _Nonnull name;
    BREAKWATER_AMQP_FUNCTIONS(BREAKWATER_AMQP_FIELD)
#undef BREAKWATER_AMQP_FIELD
    /* amqp_login is C-variadic, which Swift cannot call: stored untyped, called by breakwater_amqp_login. */
    void (* _Nonnull login)(void);
} breakwater_amqp_functions;

/* The library's functions; on failure *error is dlerror's text and the table must not be used. */
static inline breakwater_amqp_functions breakwater_amqp_load(const char * _Nullable * _Nonnull error) {
    breakwater_amqp_functions functions = {0};
    *error = NULL;
    void *library = dlopen("librabbitmq.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) { *error = dlerror(); return functions; }
#define BREAKWATER_AMQP_LOAD(name) \
    if (!(functions.name = (__typeof__(&name))dlsym(library, #name))) { *error = dlerror(); return functions; }
    BREAKWATER_AMQP_FUNCTIONS(BREAKWATER_AMQP_LOAD)
#undef BREAKWATER_AMQP_LOAD
    if (!(functions.login = (void (*)(void))dlsym(library, "amqp_login"))) *error = dlerror();
    return functions;
}

static inline amqp_rpc_reply_t breakwater_amqp_login(breakwater_amqp_functions functions,
                                                     amqp_connection_state_t _Nonnull state, const char * _Nonnull vhost,
                                                     int channel_max, int frame_max, int heartbeat,
                                                     const char * _Nonnull user, const char * _Nonnull password) {
    return ((__typeof__(&amqp_login))functions.login)(state, vhost, channel_max, frame_max, heartbeat,
                                                       AMQP_SASL_METHOD_PLAIN, user, password);
}
