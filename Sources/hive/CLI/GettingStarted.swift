import ArgumentParser

/// The API commands and the quick start printed by `hive --help`.
enum APIClientCommands {
    /// In the order a new user needs them, tenant commands first.
    static let groups = [
        CommandGroup(name: "Virtual network commands (talk to `hive api`)", subcommands: [
            BridgeCommand.self, RouterCommand.self, PortCommand.self, RouteCommand.self,
            ChainCommand.self, RuleCommand.self, PortGroupCommand.self, IPGroupCommand.self, SecurityGroupCommand.self, DHCPCommand.self,
            FloatingIPCommand.self,
        ]),
        CommandGroup(name: "Physical placement commands (admin; talk to `hive api`)", subcommands: [
            HostCommand.self, TunnelZoneCommand.self, BindingCommand.self,
        ]),
        CommandGroup(name: "The agents' state (admin; asked through `hive api`)", subcommands: [FlowsCommand.self]),
    ]

    static let quickStart = """
        The network commands (bridge ... binding) talk to a running `hive api`. \
        Point them at it with --endpoint or HIVE_ENDPOINT (default http://127.0.0.1:9696) \
        and give a token: its file with --token-file or HIVE_TOKEN_FILE (one line, chmod 600), \
        or the token itself with --token or HIVE_TOKEN. Objects are named by name or id.

        Build a small network (as a tenant):
          export HIVE_TOKEN_FILE=~/.hive/token     # your tenant token, chmod 600
          hive bridge create web
          hive bridge create db
          hive router create edge
          hive port create to-web --router edge --address 10.0.1.1/24
          hive port create to-db --router edge --address 10.0.2.1/24
          hive port create uplink --bridge web
          hive port create uplink --bridge db
          hive port link to-web uplink --peer-bridge web
          hive port link to-db uplink --peer-bridge db
          hive route create --router edge --destination 10.0.1.0/24 --port to-web
          hive route create --router edge --destination 10.0.2.0/24 --port to-db
          hive chain create web-in
          hive rule create --chain web-in --ct-state established --action accept
          hive rule create --chain web-in --protocol tcp --dst-port 80 --action accept
          hive rule create --chain web-in --action drop
          hive dhcp create --bridge web --subnet 10.0.1.0/24 \\
              --range 10.0.1.100-10.0.1.199 --gateway 10.0.1.1
          hive port create vm1 --bridge web --address 10.0.1.11 --outbound-chain web-in
          hive port create vm2 --bridge web --address auto --outbound-chain web-in

        web-in filters what reaches the VMs (the port's outbound side: out of the \
        bridge, into the VM): replies to the VMs' own connections and new \
        connections to TCP 80 pass, the rest drops. A port's inbound chain sees \
        what the VM sends.

        A VM's port carries the VM's addresses (--address, inside the bridge's DHCP \
        subnet, or auto for a free one of its range) and MAC (generated unless \
        --mac is given); with port security on, the default, the VM may send only \
        from them.

        Place it on machines (admin token):
          hive host create compute-1 --underlay-address 192.168.10.11
          hive tunnel-zone create underlay
          hive tunnel-zone add-member underlay --host compute-1
          hive binding create --host compute-1 --port vm1 --interface tap-vm1

        Read it back: `hive router show edge`, `hive port list`, `hive chain show web-in`; \
        add --json for the API's JSON. `hive help <command>` shows each command's options and examples.

        Shell completion: hive --generate-completion-script bash > /etc/bash_completion.d/hive \
        (also zsh and fish).
        """
}
