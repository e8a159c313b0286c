"""The API side of tests/openstack/up.sh, through openstacksdk as the cloud's admin
(OS_CLIENT_CONFIG_FILE / OS_CLOUD from up.sh). Every step finds before it creates,
so running it again changes nothing. Passwords come from the environment.

  provision.py identity KEYSTONE GLANCE PLACEMENT NOVA NEUTRON   (ports)
  provision.py compute-up          exits 0 once nova-compute is up
  provision.py contents DEMO.qcow2 PROBE.qcow2 DEMO_RECIPE PROBE_RECIPE
"""

import os
import sys

import openstack

REGION = "RegionOne"


def say(text):
    print(f"provision.py: {text}", file=sys.stderr, flush=True)


def password_works(name, password, project):
    # keystoneauth itself: openstack.connect would mix in OS_CLOUD's admin settings.
    from keystoneauth1 import session
    from keystoneauth1.identity import v3
    auth_url = openstack.config.OpenStackConfig().get_one().auth["auth_url"]
    auth = v3.Password(auth_url=auth_url, username=name, password=password, user_domain_id="default",
                       project_id=project.id)
    try:
        session.Session(auth=auth).get_token()
        return True
    except Exception:  # any refusal: the password is set again
        return False


def identity(conn, ports):
    keystone, glance, placement, nova, neutron = ports
    ident = conn.identity
    domain = ident.find_domain("default")
    service_project = ident.find_project("service", domain_id=domain.id) or ident.create_project(
        name="service", domain_id=domain.id, description="OpenStack's own services"
    )
    thindesk_project = ident.find_project("thindesk", domain_id=domain.id) or ident.create_project(
        name="thindesk", domain_id=domain.id, description="thindesk's desktops"
    )
    admin_role = ident.find_role("admin")
    member_role = ident.find_role("member") or ident.create_role(name="member")
    # Zed's service users need the `service` role for service tokens.
    service_role = ident.find_role("service") or ident.create_role(name="service")

    def user(name, password, project, roles):
        found = ident.find_user(name, domain_id=domain.id)
        if found is None:
            found = ident.create_user(name=name, password=password, domain_id=domain.id,
                                      default_project_id=project.id)
            say(f"user {name} created")
        elif not password_works(name, password, project):
            # Only when it changed: Keystone revokes every token of a user whose
            # password is set, and nova-compute's cached service token then fails the
            # servers it is building ("Networking client is experiencing an
            # unauthorized exception").
            ident.update_user(found, password=password)
            say(f"user {name}: password set")
        for role in roles:
            ident.assign_project_role_to_user(project, found, role)

    for name in ("glance", "placement", "nova", "neutron"):
        user(name, os.environ[f"{name.upper()}_PASS"], service_project, [admin_role, service_role])
    # thindesk's own account: a member of its project, nothing more.
    user("thindesk", os.environ["THINDESK_PASS"], thindesk_project, [member_role])

    catalogue = [
        ("glance", "image", f"http://127.0.0.1:{glance}"),
        ("placement", "placement", f"http://127.0.0.1:{placement}"),
        ("nova", "compute", f"http://127.0.0.1:{nova}/v2.1"),
        ("neutron", "network", f"http://127.0.0.1:{neutron}"),
    ]
    services = {s.type: s for s in ident.services()}
    endpoints = list(ident.endpoints())
    for name, kind, url in catalogue:
        service = services.get(kind) or ident.create_service(name=name, type=kind, is_enabled=True)
        for interface in ("public", "internal", "admin"):
            mine = [e for e in endpoints if e.service_id == service.id and e.interface == interface]
            if mine and mine[0].url == url:
                continue
            for stale in mine:
                ident.delete_endpoint(stale)
            ident.create_endpoint(service_id=service.id, interface=interface, url=url, region_id=REGION)
            say(f"endpoint {kind} {interface} {url}")
    # The catalogue names Keystone at its own port (bootstrap wrote it).
    del keystone


def compute_up(conn):
    up = [s for s in conn.compute.services() if s.binary == "nova-compute" and s.state == "up"]
    if not up:
        raise SystemExit(1)


def image(conn, name, path, recipe, project, **properties):
    for found in conn.image.images(name=name):
        if found.properties.get("thindesk_recipe") == recipe and found.status == "active":
            # Glance properties the SDK knows are attributes, the others in .properties.
            changed = {k: v for k, v in properties.items()
                       if getattr(found, k, None) != v and found.properties.get(k) != v}
            if changed:
                conn.image.update_image(found, **changed)
                say(f"image {name}: properties {sorted(changed)} set")
            return found
        conn.image.delete_image(found)
        say(f"image {name}: stale copy {found.id} deleted")
    created = conn.image.create_image(
        name=name, filename=path, disk_format="qcow2", container_format="bare",
        visibility="public", thindesk_recipe=recipe, wait=True, allow_duplicates=True,
        # The demo image boots from a FAT disk through SeaBIOS on IDE or virtio.
        hw_disk_bus="virtio", hw_video_model="qxl", **properties,
    )
    say(f"image {name} uploaded: {created.id}")
    return created


def flavors(conn):
    # name, RAM MiB, vCPUs, disk GiB. m1.* as the seed names them; thindesk.tiny fits
    # many TCG guests on a test machine.
    # thindesk.toolarge asks for a disk no host has (100 TB; Nova has no disk quota):
    # the scheduler fails it with "No valid host", the Nova fault a test expects.
    wanted = [("thindesk.tiny", 256, 1, 1), ("m1.tiny", 512, 1, 1), ("m1.small", 2048, 1, 20),
              ("thindesk.toolarge", 256, 1, 100000)]
    have = {f.name: f for f in conn.compute.flavors(is_public=None)}
    for name, ram, vcpus, disk in wanted:
        if name in have:
            continue
        conn.compute.create_flavor(name=name, ram=ram, vcpus=vcpus, disk=disk, is_public=True)
        say(f"flavor {name} created")


def network(conn, name, physnet, cidr, gateway, project, external=False, shared=False, dhcp=False):
    net = conn.network.find_network(name)
    if net is None:
        net = conn.network.create_network(
            name=name, provider_network_type="flat", provider_physical_network=physnet,
            is_router_external=external, is_shared=shared, project_id=project.id,
        )
        say(f"network {name} created")
    subnet_name = f"{name}-v4"
    subnet = conn.network.find_subnet(subnet_name)
    if subnet is None:
        conn.network.create_subnet(
            name=subnet_name, network_id=net.id, ip_version=4, cidr=cidr, gateway_ip=gateway,
            is_dhcp_enabled=dhcp, project_id=project.id,
        )
        say(f"subnet {subnet_name} {cidr} created")
    elif subnet.is_dhcp_enabled != dhcp:
        # Subnets made before the DHCP agent ran had DHCP off.
        conn.network.update_subnet(subnet, is_dhcp_enabled=dhcp)
        say(f"subnet {subnet_name}: DHCP {'on' if dhcp else 'off'}")
    if dhcp and not list(conn.network.network_hosting_dhcp_agents(net)):
        # Neutron schedules a network onto a DHCP agent when a subnet or port is
        # made or an agent starts; a subnet whose DHCP was turned on later, or one
        # made before the agent first reported, stays without one.
        agents = [a for a in conn.network.agents(agent_type="DHCP agent") if a.is_alive]
        if not agents:
            raise SystemExit(f"no live DHCP agent for network {name}")
        conn.network.add_dhcp_agent_to_network(agents[0], net)
        say(f"network {name}: served by DHCP agent {agents[0].host}")
    return net


def contents(conn, demo, probe, demo_recipe, probe_recipe):
    thindesk = conn.identity.find_project("thindesk", domain_id="default")
    admin = conn.identity.find_project("admin", domain_id="default")
    # The demo guest runs the QEMU guest agent: Nova's changePassword sets the
    # password of os_admin_user in it, thindesk's per-desktop OS password.
    image(conn, "thindesk-demo", demo, demo_recipe, thindesk, hw_qemu_guest_agent="yes", os_admin_user="student")
    image(conn, "thindesk-probe", probe, probe_recipe, thindesk)
    flavors(conn)

    # internet=true: thindesk's LAN, routed to an external network.
    public = network(conn, "public", "physnet-public", "203.0.113.0/24", "203.0.113.1", admin,
                     external=True)
    lan = network(conn, "thindesk-internet", "physnet-lan", "10.90.0.0/24", "10.90.0.1", thindesk,
                  dhcp=True)
    router = conn.network.find_router("thindesk-router")
    if router is None:
        router = conn.network.create_router(
            name="thindesk-router", project_id=thindesk.id,
            external_gateway_info={"network_id": public.id},
        )
        say("router thindesk-router created")
    lan_subnet = conn.network.find_subnet("thindesk-internet-v4")
    ports = list(conn.network.ports(device_id=router.id, network_id=lan.id))
    if not ports:
        conn.network.add_interface_to_router(router, subnet_id=lan_subnet.id)
        say("router thindesk-router: interface on thindesk-internet")

    # internet=false: no router, and a security group that lets nothing out.
    network(conn, "thindesk-isolated", "physnet-iso", "10.91.0.0/24", None, thindesk, dhcp=True)
    group = conn.network.find_security_group("thindesk-isolated", project_id=thindesk.id)
    if group is None:
        group = conn.network.create_security_group(
            name="thindesk-isolated", project_id=thindesk.id,
            description="internet=false: nothing in, nothing out",
        )
        say("security group thindesk-isolated created")
    for rule in conn.network.security_group_rules(security_group_id=group.id):
        conn.network.delete_security_group_rule(rule)
        say(f"security group thindesk-isolated: rule {rule.direction} {rule.ether_type} removed")


def main():
    conn = openstack.connect()
    command = sys.argv[1]
    if command == "identity":
        identity(conn, [int(p) for p in sys.argv[2:7]])
    elif command == "compute-up":
        compute_up(conn)
    elif command == "contents":
        contents(conn, *sys.argv[2:6])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
