from sessionward.cli.entry import finish, main

finish(main())
