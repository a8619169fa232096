/* Node HTTP calls in flight (heartbeats, reports, peer lists, seed fetches): kept on one list so
 * a stop cancels and frees them before the HTTP client is shut down (no leaks at SIGTERM). */
#include <errno.h>
#include <stddef.h>

#include "node/node_int.h"

int p2p_node_call(struct p2p_node *n, struct p2p_node_pending *p,
                  const struct p2p_httpc_opts *opts, p2p_httpc_done_cb done, void *ud)
{
    p->prev = NULL;
    p->call = n->httpc && !n->stop_done ? p2p_httpc_request(n->httpc, opts, done, ud) : NULL;
    if (!p->call) {
        p->next = NULL;
        p->drop(p); /* the client is shut down: done will never run */
        return -ECANCELED;
    }
    p->next = n->pending;
    if (n->pending)
        n->pending->prev = p;
    n->pending = p;
    return 0;
}

void p2p_node_call_done(struct p2p_node *n, struct p2p_node_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (n->pending == p)
        n->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->call = NULL;
}

void p2p_node_calls_cancel(struct p2p_node *n)
{
    while (n->pending) {
        struct p2p_node_pending *p = n->pending;
        struct p2p_httpc_call *call = p->call;
        p2p_node_call_done(n, p);
        p2p_httpc_cancel(call);
        p->drop(p);
    }
}
