"""The decider's steps, in the order `DecisionService._run` takes them, one module each:

1. `read` — the connections from EC2 and what the tables hold about them (re-read while unlisted)
2. `resume` — claims left in flight by a dead invocation, carried on
3. `assess` — what each request asks for, decided by the live policy (or the tenant record, or an operator)
4. `claim` — the endpoint (and an accept's quota slot) taken in one conditional transaction
5. `act` — Accept/Reject per service, a failure confirmed against EC2
6. `record` — an accept EC2 shows done, recorded before it is announced
7. `announce` — SNS and the bus, then each request's announcement mark

`work` holds what they share: a request's `Work`, and the fan-out of one step over many requests.
"""
